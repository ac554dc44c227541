//! TEMPORARY STUB (replaced by the real module).
use crate::instance::LinearReward;
use crate::policy::Regularizer;
use crate::preference::WinCounts;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyClass {
    Tabular,
    Linear,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DpoFit {
    pub policy: Vec<f64>,
    pub implied_reward: Vec<f64>,
    pub theta: Vec<f64>,
    pub iterations: u32,
    pub converged: bool,
}

pub fn dpo_loss(_reg: &Regularizer, _counts: &WinCounts, _pi: &[f64], _gamma: f64) -> f64 {
    todo!()
}

pub fn fit_tabular(
    _reg: &Regularizer,
    _counts: &WinCounts,
    _gamma: f64,
    _ridge: f64,
    _tol: f64,
) -> DpoFit {
    todo!()
}

pub fn fit_linear(
    _reg: &Regularizer,
    _counts: &WinCounts,
    _class: &LinearReward,
    _gamma: f64,
    _ridge: f64,
    _start: &[f64],
    _tol: f64,
) -> DpoFit {
    todo!()
}

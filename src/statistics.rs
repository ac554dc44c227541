// TEMPORARY STUB until the statistics module lands.
use serde::{Deserialize, Serialize};
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailRule {
    pub fraction: f64,
    pub min_points: usize,
}
impl Default for TailRule {
    fn default() -> Self {
        TailRule {
            fraction: 0.5,
            min_points: 4,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateStatistic {
    Mean,
    Quantile,
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: u64,
    pub replications: usize,
    pub mean: f64,
    pub std_err: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub median: f64,
    pub quantile: f64,
    pub quantile_level: f64,
    pub min: f64,
    pub max: f64,
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExponentEstimate {
    pub slope: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub tail_from_n: u64,
}
pub fn summarize(n: u64, v: &[f64], delta: f64) -> Summary {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let r = v.len();
    let mean = v.iter().sum::<f64>() / r as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (r as f64 - 1.0)).sqrt();
    let se = sd / (r as f64).sqrt();
    Summary {
        n,
        replications: r,
        mean,
        std_err: se,
        ci_low: mean - 1.96 * se,
        ci_high: mean + 1.96 * se,
        median: s[r / 2],
        quantile: s[((1.0 - delta) * (r - 1) as f64) as usize],
        quantile_level: 1.0 - delta,
        min: s[0],
        max: s[r - 1],
    }
}
pub fn fit_exponent(
    ns: &[u64],
    raw: &[Vec<f64>],
    stat: RateStatistic,
    delta: f64,
    tail: TailRule,
    _b: usize,
    _l: f64,
    _f: f64,
    _seed: u64,
) -> ExponentEstimate {
    let l = ns.len();
    let k = ((tail.fraction * l as f64).ceil() as usize)
        .max(tail.min_points)
        .min(l);
    let xs: Vec<f64> = ns[l - k..].iter().map(|&n| (n as f64).ln()).collect();
    let ys: Vec<f64> = raw[l - k..]
        .iter()
        .zip(&ns[l - k..])
        .map(|(v, &n)| {
            let s = summarize(n, v, delta);
            match stat {
                RateStatistic::Mean => s.mean,
                RateStatistic::Quantile => s.quantile,
            }
            .ln()
        })
        .collect();
    let mx = xs.iter().sum::<f64>() / k as f64;
    let my = ys.iter().sum::<f64>() / k as f64;
    let slope = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum::<f64>()
        / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
    ExponentEstimate {
        slope: if slope.is_finite() { Some(slope) } else { None },
        ci_low: Some(slope - 0.05),
        ci_high: Some(slope + 0.05),
        tail_from_n: ns[l - k],
    }
}

pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    use statrs::distribution::{Binomial, DiscreteCDF};
    if k == 0 {
        1.0
    } else {
        Binomial::new(p, n).unwrap().sf(k - 1)
    }
}
pub fn first_n_below(ns: &[u64], stat: &[f64], eps: f64) -> Option<u64> {
    let mut best = None;
    for i in (0..ns.len()).rev() {
        if stat[i] <= eps {
            best = Some(ns[i]);
        } else {
            break;
        }
    }
    best
}
pub fn least_squares(x: &[f64], y: &[f64]) -> (f64, f64) {
    let k = x.len() as f64;
    let mx = x.iter().sum::<f64>() / k;
    let my = y.iter().sum::<f64>() / k;
    let s = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / x.iter().map(|a| (a - mx).powi(2)).sum::<f64>();
    (s, my - s * mx)
}

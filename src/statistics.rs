use serde::{Deserialize, Serialize};
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailRule { pub fraction: f64, pub min_points: usize }
impl Default for TailRule { fn default() -> Self { TailRule { fraction: 0.5, min_points: 4 } } }

//! Small numerical kernels shared by the policy and gap code: log-sum-exp with zero
//! probabilities, and second-order remainders computed without cancellation.

/// ln sum_i exp(a_i), with a_i = -inf allowed (zero probabilities). Returns -inf if every
/// entry is -inf. Stable for any finite magnitudes (shifts by the maximum).
pub fn log_sum_exp(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    let s: f64 = a.iter().map(|&v| (v - m).exp()).sum();
    m + s.ln()
}

/// ln(x) with ln(0) = -inf (explicit, so that zero probabilities are intentional).
pub fn ln0(x: f64) -> f64 {
    if x > 0.0 { x.ln() } else { f64::NEG_INFINITY }
}

const SERIES_RADIUS: f64 = 1e-2;

/// e^d - 1 - d, accurate to a few ulps also for |d| << 1 (series sum_{k>=2} d^k/k! there).
/// Used for the FKL sub-optimality identity (THEORY §3, derived in `gap`).
pub fn expm1_minus_x(d: f64) -> f64 {
    if d.abs() < SERIES_RADIUS {
        // sum_{k=2}^{12} d^k / k!; truncation error < |d|^13 / 13! ~ 1e-36.
        let mut term = d * d / 2.0;
        let mut sum = term;
        for k in 3..=12 {
            term *= d / k as f64;
            sum += term;
        }
        sum
    } else {
        d.exp_m1() - d
    }
}

/// u ln u - u + 1 with u = e^d, i.e. d e^d - (e^d - 1) = sum_{k>=2} (k-1) d^k / k!,
/// accurate also for |d| << 1. Used for the RKL sub-optimality identity D3:
/// KL(p || q) = sum_y q(y) [u ln u - u + 1], u = p/q.
pub fn kl_remainder(d: f64) -> f64 {
    if d.abs() < SERIES_RADIUS {
        let mut term = d * d / 2.0; // d^k / k! at k = 2
        let mut sum = term;
        for k in 3..=12 {
            term *= d / k as f64;
            sum += (k - 1) as f64 * term;
        }
        sum
    } else if d > 700.0 {
        f64::INFINITY
    } else {
        d * d.exp() - d.exp_m1()
    }
}

/// The logistic function sigma(t) = 1 / (1 + e^-t), accurate in both tails.
pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// ln sigma(t) = -ln(1 + e^-t), accurate in both tails.
pub fn ln_sigmoid(t: f64) -> f64 {
    ln_sigmoid_from_exp(t, (-t.abs()).exp())
}

/// [`ln_sigmoid`] given e = e^-|t| (for callers that already hold it):
/// ln sigma(t) = -ln(1 + e) for t >= 0, t - ln(1 + e) for t < 0.
#[inline(always)]
pub fn ln_sigmoid_from_exp(t: f64, e: f64) -> f64 {
    if t >= 0.0 { -e.ln_1p() } else { t - e.ln_1p() }
}

/// The root of an increasing function f on the bracket [lo, hi] (f(lo) <= 0 <= f(hi)), with
/// `f` returning (f(x), f'(x)): Newton's method safeguarded by bisection (a Newton step that
/// leaves the current bracket is replaced by the midpoint), until a step or the bracket is
/// below `rel_tol` (1 + |x|). Used by `best_of_n` (the gamma of matching KL).
pub fn increasing_root(
    mut f: impl FnMut(f64) -> (f64, f64),
    mut lo: f64,
    mut hi: f64,
    rel_tol: f64,
) -> f64 {
    let mut x = 0.5 * (lo + hi);
    for _ in 0..400 {
        let (v, d) = f(x);
        if v == 0.0 {
            return x;
        }
        if v > 0.0 {
            hi = x;
        } else {
            lo = x;
        }
        let newton = if d > 0.0 { x - v / d } else { f64::NAN };
        let next = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let step = (next - x).abs();
        x = next;
        if step <= rel_tol * (1.0 + x.abs()) || hi - lo <= rel_tol * (1.0 + x.abs()) {
            break;
        }
    }
    x
}

/// Serde for tables of values where NaN means "not applicable" (and an infinite value
/// "unbounded"): JSON has no NaN, so non-finite values are written as `null` and read back
/// as NaN. Used by the extra series of journals and result files.
pub mod nullable_table {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Vec<Option<f64>>> = t
            .iter()
            .map(|r| r.iter().map(|&x| x.is_finite().then_some(x)).collect())
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        let v: Vec<Vec<Option<f64>>> = Vec::deserialize(d)?;
        Ok(v.into_iter()
            .map(|r| r.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            .collect())
    }
}

/// A number in at most four significant digits, in plain notation for 1e-3 <= |v| < 1e4 and
/// scientific otherwise ("0.25", "2.4e4", "3.9e-14"): for messages and tables, where 1e300
/// must not print with 301 digits.
pub fn compact(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (1e-3..1e4).contains(&v.abs()) {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        trim(format!("{v:.digits$}"))
    } else {
        let s = format!("{v:.1e}");
        let (m, e) = s.split_once('e').expect("scientific");
        format!("{}e{e}", trim(m.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers_are_short() {
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(24_000.0), "2.4e4");
        assert_eq!(compact(3.9e-14), "3.9e-14");
        assert_eq!(compact(1e300), "1e300");
        assert_eq!(compact(1.0), "1");
        assert_eq!(compact(-12.345), "-12.35");
        assert_eq!(compact(f64::INFINITY), "inf");
    }

    #[test]
    fn lse_handles_zeros_and_large_values() {
        assert_eq!(
            log_sum_exp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            f64::NEG_INFINITY
        );
        let v = log_sum_exp(&[1e4, 1e4, f64::NEG_INFINITY]);
        assert!((v - (1e4 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sum_exp(&[0.0, 0.0]) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn remainders_match_direct_formula_away_from_zero_and_series_near_zero() {
        for &d in &[-3.0f64, -0.5, -0.02, 0.02, 0.5, 3.0] {
            let direct = d.exp() - 1.0 - d;
            assert!((expm1_minus_x(d) - direct).abs() <= 1e-14 * direct.abs().max(1.0));
            let u: f64 = d.exp();
            let direct_kl = u * u.ln() - u + 1.0;
            assert!((kl_remainder(d) - direct_kl).abs() <= 1e-13 * direct_kl.abs().max(1.0));
        }
        // Near zero the leading terms are d^2/2 for both; relative accuracy must stay high.
        for &d in &[1e-9f64, -1e-9, 1e-4, -3e-3, 9.99e-3, -9.99e-3] {
            let a = expm1_minus_x(d);
            let lead = d * d / 2.0 + d * d * d / 6.0;
            assert!(((a - lead) / a).abs() < d.abs().max(1e-12) * 0.1 + 1e-15);
            let b = kl_remainder(d);
            let lead_kl = d * d / 2.0 + d * d * d / 3.0;
            assert!(((b - lead_kl) / b).abs() < d.abs() * 0.3 + 1e-15);
        }
        // Continuity across the series radius.
        // Across a step of 2e in d both functions move by about 2e * d (their slopes there);
        // anything beyond that plus a few ulps of the value would be a seam.
        let e = 1e-12;
        let seam = |f: fn(f64) -> f64| (f(SERIES_RADIUS - e) - f(SERIES_RADIUS + e)).abs();
        let allowed = 2.0 * e * SERIES_RADIUS * 1.02 + 1e-19;
        assert!(seam(expm1_minus_x) < allowed, "{}", seam(expm1_minus_x));
        assert!(seam(kl_remainder) < allowed, "{}", seam(kl_remainder));
    }

    #[test]
    fn sigmoid_tails() {
        assert_eq!(sigmoid(800.0), 1.0);
        assert!(sigmoid(-800.0) >= 0.0);
        assert!((ln_sigmoid(-800.0) + 800.0).abs() < 1e-12);
        assert!((ln_sigmoid(0.0) + 2f64.ln()).abs() < 1e-15);
        assert!((sigmoid(1.3) + sigmoid(-1.3) - 1.0).abs() < 1e-15);
    }
}

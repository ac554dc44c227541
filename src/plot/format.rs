//! How numbers and a result's names are written in the figures (no drawing here).

use super::model::{GammaView, gamma_of};
use crate::result::{CellResult, ResultFile};
use crate::statistics::ExponentEstimate;

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
const SUBSCRIPT: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];

/// 10 to an integer power, with superscript digits: "10⁻³".
pub(super) fn pow10_text(k: i64) -> String {
    let mut s = String::from("10");
    if k < 0 {
        s.push('⁻');
    }
    for d in k.unsigned_abs().to_string().bytes() {
        s.push(SUPERSCRIPT[(d - b'0') as usize]);
    }
    s
}

/// A whole number in subscript digits: "₁₂".
pub(super) fn subscript(i: usize) -> String {
    i.to_string()
        .bytes()
        .map(|d| SUBSCRIPT[(d - b'0') as usize])
        .collect()
}

/// Replaces ASCII minus signs with the typographic minus.
fn minus(s: String) -> String {
    s.replace('-', "−")
}

/// A short number: up to 4 significant digits, no trailing zeros.
pub(super) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i64).clamp(0, 6) as usize;
        let t = format!("{v:.decimals$}");
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    } else {
        let k = a.log10().floor() as i64;
        let m = v / 10f64.powi(k as i32);
        format!("{}×{}", fmt_num(m), pow10_text(k))
    };
    minus(s)
}

/// A sample size: the integer below 10^5, else mantissa × power of ten ("10⁶", "3.2×10⁵").
pub(super) fn fmt_n(n: u64) -> String {
    if n < 100_000 {
        return n.to_string();
    }
    let k = (n as f64).log10().floor() as i64;
    let m = n as f64 / 10f64.powi(k as i32);
    let m = (m * 100.0).round() / 100.0;
    if m == 1.0 {
        pow10_text(k)
    } else {
        format!("{}×{}", fmt_num(m), pow10_text(k))
    }
}

/// "−0.97, 90% CI [−1.02, −0.92]" (the interval only when both ends are known).
pub(super) fn fmt_estimate(v: f64, e: &ExponentEstimate) -> String {
    let f = |x: f64| minus(format!("{x:.2}"));
    match (e.ci_low, e.ci_high) {
        (Some(l), Some(h)) if l.is_finite() && h.is_finite() => {
            let level = if e.ci_level > 0.0 && e.ci_level < 1.0 {
                format!("{}% CI", fmt_num(100.0 * e.ci_level))
            } else {
                "CI".into()
            };
            format!("{}, {level} [{}, {}]", f(v), f(l), f(h))
        }
        _ => f(v),
    }
}

/// At most `n` characters, the last an ellipsis if cut.
pub(super) fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// A file name part: characters other than `[A-Za-z0-9._-]` replaced by `-`.
pub(super) fn file_safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if t.is_empty() { "result".into() } else { t }
}

/// Text for an SVG `<text>` element.
pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---------------------------------------------------------------------------------------
// The result's names in words.

pub(super) fn quantity_text(result: &ResultFile) -> String {
    match result.quantity.name() {
        "suboptimality" => "sub-optimality gap".into(),
        "reward_gap" => "reward gap".into(),
        "optimality" => "optimality gap".into(),
        other => other.replace('_', " "),
    }
}

pub(super) fn divergence_text(result: &ResultFile) -> String {
    result.divergence.name().to_uppercase()
}

pub(super) fn class_text(result: &ResultFile) -> String {
    let i = &result.instance;
    match (i.reward_class.name(), i.dim, i.candidates) {
        ("linear", Some(d), _) => format!("linear class, d = {d}"),
        ("finite", _, Some(m)) => format!("finite class, M = {m}"),
        (c, _, _) => format!("{c} class"),
    }
}

/// "γ = 1" for a fixed gamma, "γ(n) = 0.1·n^0.5" for a schedule.
pub(super) fn gamma_text(cell: &CellResult) -> String {
    match gamma_of(cell) {
        GammaView::Fixed(g) => format!("γ = {}", fmt_num(g)),
        GammaView::Schedule { c, p } => {
            let power = match p {
                0.0 => String::new(),
                0.5 => "√n".into(),
                1.0 => "n".into(),
                _ => format!("n^{}", fmt_num(p)),
            };
            let factor = match (c, power.is_empty()) {
                (_, true) => fmt_num(c),
                (1.0, false) => String::new(),
                _ => format!("{}·", fmt_num(c)),
            };
            format!("γ(n) = {factor}{power}")
        }
    }
}

/// The legend note for `k` error bars cut at the axis.
pub(super) fn cut_text(k: usize) -> String {
    if k == 1 {
        "1 interval reaches ≤ 0: its bar is cut at the axis".into()
    } else {
        format!("{k} intervals reach ≤ 0: their bars are cut at the axis")
    }
}

//! Tidy data: a result as flat CSV tables that load into pandas, R or a spreadsheet with no
//! parsing of labels. Every row carries the spec, the cell label and every cell parameter
//! as its own column, so rows of different specs and cells can be concatenated and grouped.
//!
//! - `summary.csv`: one row per cell and n (the per-n summaries of `result.json`).
//! - `raw.csv`: long format, one row per value: cell, n, replication, quantity, value
//!   (the spec's gap and every recorded series; docs/theory.md §7 defines the summaries).
//!
//! Rendering only: both are made from a saved [`ResultFile`], never from a run.

use crate::gap::Quantity;
use crate::policy::Divergence;
use crate::result::{CellResult, ResultFile};
use crate::spec::GammaRule;

/// The parameter columns of a result's cells, in order: the swept instance parameter, if
/// any (`references`, `contexts`, ...: docs/theory.md §2, "Instance sweeps"), `gamma_c`,
/// `gamma_p` (gamma(n) = gamma_c n^gamma_p; a fixed gamma has gamma_p = 0) and
/// `weight_1`..`weight_K`, K the most references of any cell (a cell with fewer leaves the
/// rest empty).
pub fn parameter_names(r: &ResultFile) -> Vec<String> {
    let k = r
        .cells
        .iter()
        .map(|c| c.weights.len())
        .max()
        .unwrap_or(r.instance.references);
    let mut names: Vec<String> = swept_instance(r).map(str::to_string).into_iter().collect();
    names.extend(["gamma_c".to_string(), "gamma_p".to_string()]);
    names.extend((1..=k).map(|i| format!("weight_{i}")));
    names
}

/// The instance parameter the result's cells sweep, if any.
fn swept_instance(r: &ResultFile) -> Option<&'static str> {
    r.cells
        .iter()
        .find_map(|c| c.instance)
        .map(|s| s.param.name())
}

/// The values of [`parameter_names`] for cell `c` of result `r`.
pub fn parameter_values(r: &ResultFile, c: &CellResult) -> Vec<String> {
    let (gc, gp) = match c.gamma {
        GammaRule::Fixed(g) => (g, 0.0),
        GammaRule::Schedule(s) => (s.c, s.p),
    };
    let names = parameter_names(r);
    let mut v: Vec<String> = c
        .instance
        .map(|s| s.value.to_string())
        .into_iter()
        .collect();
    v.extend([gc.to_string(), gp.to_string()]);
    v.extend(c.weights.iter().map(|w| w.to_string()));
    v.resize(names.len(), String::new());
    v
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The leading columns of every row of cell `c`: spec, cell, parameters.
fn key(r: &ResultFile, c: &CellResult) -> String {
    let mut cols = vec![field(&r.name), field(&c.label)];
    cols.extend(parameter_values(r, c));
    cols.join(",")
}

fn header(r: &ResultFile, rest: &str) -> String {
    format!("spec,cell,{},{rest}\n", parameter_names(r).join(","))
}

/// The name of a result's main quantity in `raw.csv`: divergence and quantity
/// (`rkl_suboptimality`, `fkl_reward_gap`, ...).
pub fn quantity_name(divergence: Divergence, quantity: Quantity) -> String {
    format!("{}_{}", divergence.name(), quantity.name())
}

/// The per-n summaries of a result as CSV (one row per cell and n).
pub fn summary_csv(r: &ResultFile) -> String {
    let mut s = header(
        r,
        "n,gamma,replications,mean,std_err,ci_low,ci_high,median,quantile_level,quantile,min,max,mle_iterations_mean,mle_boundary_fraction",
    );
    for c in &r.cells {
        let key = key(r, c);
        for (j, m) in c.summaries.iter().enumerate() {
            s.push_str(&format!(
                "{key},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                m.n,
                c.gamma_at_n[j],
                m.replications,
                m.mean,
                m.std_err,
                m.ci_low,
                m.ci_high,
                m.median,
                m.quantile_level,
                m.quantile,
                m.min,
                m.max,
                c.mle_iterations_mean[j],
                c.mle_boundary_fraction[j]
            ));
        }
    }
    s
}

/// Every value of a result in long format: one row per cell, n, replication and quantity
/// (the spec's gap, named by [`quantity_name`], then each recorded series by its name). A
/// value that does not apply (a NaN series entry, e.g. the DPO identity residual where
/// the MLE sits on the norm ball) is an empty field.
pub fn raw_csv(r: &ResultFile) -> String {
    let mut s = header(r, "n,gamma,replication,quantity,value");
    let main = quantity_name(r.divergence, r.quantity);
    for c in &r.cells {
        let key = key(r, c);
        let tables = std::iter::once((main.as_str(), &c.raw))
            .chain(c.series.iter().map(|x| (x.name.as_str(), &x.raw)));
        for (name, table) in tables {
            for (j, row) in table.iter().enumerate() {
                for (rep, v) in row.iter().enumerate() {
                    let v = if v.is_finite() {
                        v.to_string()
                    } else {
                        String::new()
                    };
                    s.push_str(&format!(
                        "{key},{},{},{rep},{},{v}\n",
                        c.n[j],
                        c.gamma_at_n[j],
                        field(name)
                    ));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(field("weights=1:0"), "weights=1:0");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}

//! Rendering: the files a person reads, made from saved results and saved judgements
//! only (never judging again): `REPORT.md`, JUnit and the console tables (the CSV tables
//! are `crate::tidy`).

use crate::claims::{Judged, Judgement, Verdict};
use crate::result::ResultFile;
use crate::statistics::Summary;

/// The meaning of every verdict word and of "bound slack", as README.md states it; the
/// report carries it so that a reader needs nothing else.
pub const GLOSSARY: &str = "\
Verdicts (one per claim and piece of evidence; the rule is the same for every claim):

- **holds**: every finding agrees with the claim.
- **violated**: some finding contradicts it: a rate slower than claimed, a bound exceeded, an exact check that fails. `mrkl check` exits 1.
- **inconclusive**: nothing contradicts it, but some finding cannot decide: an exponent interval that straddles claimed + tolerance, gaps at the numerical floor (exponential decay, as for the finite class), a correlation that is not significant.
- **not measured**: nothing in this run measures the claim (no spec names it, or its exact checks run only with `mrkl check`). Left out of JUnit.

Findings:

- *rate matches* n^a (in gamma: *grows like* gamma^a; sample complexity: *n(eps) matches* (1/eps)^a): the exponent's bootstrap interval [lo, hi] lies within a ± tolerance.
- *decays faster than* n^a (*grows more slowly than* gamma^a, *needs fewer samples than* (1/eps)^a): hi <= a + tolerance and lo < a - tolerance: the claim, an upper bound, holds with room (not tight).
- *decays slower than* n^a (*grows faster than*, *needs more samples than*): lo > a + tolerance; contradicts the claim.
- *exponent undecided*: lo <= a + tolerance < hi. *no exponent*: the gaps reach the numerical floor.
- *bound holds, slack S x*: at every n the gap exceeds the claim's bound in no more replications than delta allows (exact binomial test at level 1e-3 / L over the L sample sizes); **bound slack** S is the smallest, over n, of the bound divided by the measured (1 - delta)-quantile of the gap: S = 10 means the bound sits 10 times above the data. *bound exceeded*: the test rejects at some n.
- *check passes / fails*: an exact check (a value such as a relative improvement or a residual against a tolerance).

The measured column says what its number is: an exponent (in n, in gamma, or of n(eps) in 1/eps), a Spearman correlation, a residual or a relative improvement.
";

/// The verdict table's header, shared by the console and REPORT.md.
pub const VERDICT_HEADER: [&str; 6] = [
    "claim", "evidence", "measured", "claimed", "verdict", "findings",
];

/// One row per judgement: claim, evidence, what was measured with its value and interval,
/// the claimed exponent, the verdict and the findings in words.
pub fn verdict_rows(judgements: &[Judgement]) -> Vec<[String; 6]> {
    judgements
        .iter()
        .map(|j| {
            let value = match (j.measured, j.ci_low, j.ci_high) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:+.3} [{lo:+.3}, {hi:+.3}]"),
                (Some(m), _, _) if j.measure == crate::claims::Measure::Correlation => {
                    format!("{m:+.3}")
                }
                (Some(m), _, _) => crate::numerics::compact(m),
                _ => String::new(),
            };
            let measured = if value.is_empty() {
                "-".to_string()
            } else {
                format!("{}: {value}", j.measure.name())
            };
            [
                j.claim.clone(),
                j.evidence.clone().unwrap_or_else(|| "-".into()),
                measured,
                j.claimed
                    .map(|c| format!("{c:+}"))
                    .unwrap_or_else(|| "-".into()),
                j.verdict.name().into(),
                j.reason.clone(),
            ]
        })
        .collect()
}

/// Text safe inside a markdown table cell and free of raw HTML.
fn md_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "/")
        .replace('\n', " ")
}

/// `REPORT.md`: the verdict table and the glossary, then per result its description, plots,
/// summaries, [ours] choices and provenance. `plots[i]` are the files drawn for
/// `results[i]`. Made from saved results and saved judgements only.
pub fn markdown(results: &[ResultFile], plots: &[Vec<String>], judged: &Judged) -> String {
    let mut s = String::from("# mrkl report\n\n");
    s.push_str("Generated from the results and the saved judgements (`summary.json`) in this folder; `mrkl report <folder>` renders it again without rerunning or re-judging anything. ");
    s.push_str("A rate is the exponent of the mean gap over the tail of the n grid (or across the gammas of a sweep), with a bootstrap interval; bounds are checked per n by an exact binomial test.\n\n");
    s.push_str(&format!(
        "Judged by `mrkl {}`{}{}; {}.\n\n",
        judged.command,
        if judged.overrides.is_empty() {
            String::new()
        } else {
            format!(
                " with {}",
                judged
                    .overrides
                    .iter()
                    .map(|o| format!("`--set {}`", md_escape(o)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        match judged.exact_seed {
            Some(seed) => format!(", exact checks with seed {seed}"),
            None => ", exact checks not run".into(),
        },
        judged.counts_text()
    ));
    s.push_str("## Verdicts\n\n| ");
    s.push_str(&VERDICT_HEADER.join(" | "));
    s.push_str(" |\n|---|---|---|---|---|---|\n");
    for row in verdict_rows(&judged.judgements) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 4 {
                    format!("**{}**", md_escape(c))
                } else {
                    md_escape(c)
                }
            })
            .collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    s.push_str("\n");
    s.push_str(GLOSSARY);
    let user: Vec<&crate::claims::Claim> = judged
        .registry
        .claim
        .iter()
        .filter(|c| {
            crate::claims::Registry::builtin()
                .get(&c.id)
                .is_none_or(|b| b != *c)
        })
        .collect();
    if !user.is_empty() {
        s.push_str("\nClaims that differ from the built-in registry (users' claims files and overrides):\n\n");
        for c in user {
            s.push_str(&format!(
                "- `{}` ({}): {}\n",
                md_escape(&c.id),
                md_escape(&c.source),
                md_escape(&toml::to_string(c).unwrap_or_default().replace('\n', "; "))
            ));
        }
    }
    s.push_str(&exact_tables(&judged.judgements));
    for (r, files) in results.iter().zip(plots) {
        s.push_str(&format!("\n## {}\n\n", r.name));
        if let Some(d) = &r.spec.description {
            s.push_str(&format!("{}.\n\n", md_escape(d)));
        }
        s.push_str(&format!(
            "Claims {}; {} {}; {} class, |X| = {}, |Y| = {}, K = {}, R_max = {}; {} replications per n; master seed {}.\n\n",
            if r.claims.is_empty() { "-".to_string() } else { r.claims.join(", ") },
            r.divergence.name(),
            r.quantity.name(),
            r.instance.reward_class.name(),
            r.instance.contexts,
            r.instance.responses,
            r.instance.references,
            r.instance.r_max,
            r.cells.first().map(|c| c.raw.first().map(Vec::len).unwrap_or(0)).unwrap_or(0),
            r.provenance.seed
        ));
        for f in files.iter().filter(|f| f.ends_with(".png")) {
            s.push_str(&format!("![{f}]({}/{f})\n", r.name));
        }
        s.push_str("\n| cell | n | mean gap | 95% CI | quantile | exponent of mean [CI] | coverage C | escort support |\n|---|---|---|---|---|---|---|---|\n");
        for c in &r.cells {
            let (first, last) = (c.summaries.first(), c.summaries.last());
            if let (Some(a), Some(b)) = (first, last) {
                let e = &c.exponent_mean;
                let exp = match (e.slope, e.ci_low, e.ci_high) {
                    (Some(m), Some(lo), Some(hi)) => format!("{m:+.3} [{lo:+.3}, {hi:+.3}]"),
                    _ => "-".into(),
                };
                s.push_str(&format!(
                    "| {} | {}..{} | {:.3e} .. {:.3e} | [{:.3e}, {:.3e}] at n_max | {:.3e} at n_max | {exp} | {} | {} |\n",
                    c.label,
                    a.n,
                    b.n,
                    a.mean,
                    b.mean,
                    b.ci_low,
                    b.ci_high,
                    b.quantile,
                    c.coverage.map(|v| format!("{v:.3}")).unwrap_or_else(|| "inf".into()),
                    c.support
                        .as_ref()
                        .map(|p| format!("{:.2} of {} (min {})", p.mean, p.responses, p.min))
                        .unwrap_or_else(|| "-".into())
                ));
            }
        }
        let dropped: Vec<&str> = r
            .cells
            .iter()
            .filter(|c| c.support.as_ref().is_some_and(|p| p.mostly_dropped()))
            .map(|c| c.label.as_str())
            .collect();
        if !dropped.is_empty() {
            s.push_str(&format!(
                "\n**Warning:** in {} the references with positive weight share fewer than half of the responses on average (escort support column): the RKL solution, geometric sampling and MRPO ignore the responses outside it.\n",
                md_escape(&dropped.join(", "))
            ));
        }
        s.push_str(&no_minimiser_lines(r));
        s.push_str(&weights_table(r, &judged.judgements));
        if r.cells.iter().any(|c| !c.series.is_empty()) {
            s.push_str("\nRecorded series (mean over replications; for a gap series, the paired difference series - quantity with its 95% interval: > 0 means the spec's fitted policy has the smaller gap):\n\n| cell | series | mean at n_min | mean at n_max | difference at n_min [95% CI] | difference at n_max [95% CI] |\n|---|---|---|---|---|---|\n");
            let mean = |v: Option<&Option<Summary>>| {
                v.and_then(|s| s.as_ref())
                    .map(|s| format!("{:.4e}", s.mean))
                    .unwrap_or_else(|| "-".into())
            };
            let diff = |v: Option<&Option<Summary>>| {
                v.and_then(|s| s.as_ref())
                    .map(|s| format!("{:+.3e} [{:+.3e}, {:+.3e}]", s.mean, s.ci_low, s.ci_high))
                    .unwrap_or_else(|| "-".into())
            };
            for c in &r.cells {
                for se in &c.series {
                    let d = se.difference.as_ref();
                    s.push_str(&format!(
                        "| {} | {} | {} | {} | {} | {} |\n",
                        c.label,
                        se.name,
                        mean(se.summaries.first()),
                        mean(se.summaries.last()),
                        d.map(|d| diff(d.first())).unwrap_or_else(|| "-".into()),
                        d.map(|d| diff(d.last())).unwrap_or_else(|| "-".into()),
                    ));
                }
            }
        }
        s.push_str("\n[ours] choices: ");
        let items: Vec<String> = r
            .ours
            .entries()
            .into_iter()
            .map(|(k, v)| format!("`{k}` = `{v}`"))
            .collect();
        s.push_str(&items.join(", "));
        s.push_str(&format!(
            ".\n\nProvenance: mrkl {}, git {}, spec hash {}, instance hash {}.\n",
            r.provenance.mrkl_version,
            r.provenance
                .git_commit
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            r.provenance.spec_hash,
            r.instance.hash
        ));
    }
    s
}

/// Tabular DPO without ridge (`options.dpo_ridge = 0`): per cell, at each n where some fit
/// had no finite minimiser, how many, and where the policy goes (docs/theory.md §6).
pub fn no_minimiser_lines(r: &ResultFile) -> String {
    let mut s = String::new();
    for c in &r.cells {
        let Some(m) = &c.no_minimiser else { continue };
        let reps = c.raw.first().map(Vec::len).unwrap_or(0);
        let at: Vec<String> = c
            .n
            .iter()
            .enumerate()
            .filter(|&(j, _)| m.not_converged[j] > 0)
            .map(|(j, n)| {
                format!(
                    "n = {n}: {} of {reps} (on average {:.2} responses -> probability 0, {:.2} contexts -> a single response)",
                    m.not_converged[j], m.vanishing_mean[j], m.point_mass_contexts_mean[j]
                )
            })
            .collect();
        s.push_str(&format!(
            "
**Tabular DPO without ridge** (`options.dpo_ridge = 0`), {}: {}.
",
            c.label,
            if at.is_empty() {
                "every fit has a finite minimiser".to_string()
            } else {
                format!(
                    "fits with no finite minimiser (a response beaten and never beating back; the gap is that of the last Newton iterate): {}",
                    at.join("; ")
                )
            }
        ));
    }
    s
}

/// The MR table of a weight sweep (from its MR judgement's details): per alpha, the
/// measured gap at n_max beside C_alpha and the predicted constant and gap (THEORY §8), with
/// the Spearman correlation of each against the measured gap and the alpha each one picks.
fn weights_table(r: &ResultFile, judgements: &[Judgement]) -> String {
    use crate::claims::judgement::Details;
    let Some(Details::Weights {
        n,
        spearman_gap_vs_coverage,
        best_alpha_by_gap,
        best_alpha_by_coverage,
        spearman_gap_vs_predicted,
        best_alpha_by_predicted,
        cells,
        ..
    }) = judgements
        .iter()
        .find(|j| j.evidence.as_deref() == Some(r.name.as_str()))
        .map(|j| &j.details)
    else {
        return String::new();
    };
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.4e}")).unwrap_or_else(|| "-".into());
    let mut s = format!(
        "
Across alpha at n = {n}: measured gap, C_alpha and the predicted constant C (docs/theory.md §8; predicted gap C n^a):

| cell | measured gap | C_alpha | predicted C | predicted gap |
|---|---|---|---|---|
"
    );
    for c in cells {
        s.push_str(&format!(
            "| {} | {:.4e} | {} | {} | {} |
",
            md_escape(&c.cell),
            c.mean_gap,
            opt(c.coverage),
            opt(c.predicted_constant),
            opt(c.predicted_gap)
        ));
    }
    let pred = match spearman_gap_vs_predicted {
        Some(rho) => format!("{rho:+.2}"),
        None => "-".into(),
    };
    s.push_str(&format!(
        "
Spearman with the measured gap: C_alpha {spearman_gap_vs_coverage:+.2}, predicted gap {pred}. Best alpha by the measured gap: {}; by C_alpha: {}; by the prediction: {}.
",
        md_escape(best_alpha_by_gap),
        md_escape(best_alpha_by_coverage.as_deref().unwrap_or("-")),
        md_escape(best_alpha_by_predicted.as_deref().unwrap_or("-"))
    ));
    s
}

/// The tables of the exact checks of neighbouring papers (`Details::Table`), one section per
/// table (claims sharing a table share its section), numbers in four significant digits.
fn exact_tables(judgements: &[Judgement]) -> String {
    use crate::claims::judgement::Details;
    let mut tables: Vec<(Vec<&str>, &Details)> = vec![];
    for j in judgements {
        let Details::Table { caption, rows, .. } = &j.details else {
            continue;
        };
        let same = |d: &Details| matches!(d, Details::Table { caption: c, rows: r, .. } if c == caption && r == rows);
        match tables.iter_mut().find(|(_, d)| same(d)) {
            Some((ids, _)) => ids.push(&j.claim),
            None => tables.push((vec![&j.claim], &j.details)),
        }
    }
    let mut s = String::new();
    for (ids, d) in tables {
        let Details::Table {
            caption,
            columns,
            rows,
            ..
        } = d
        else {
            unreachable!("only tables are collected");
        };
        s.push_str(&format!(
            "\n## {}: exact values\n\n{}.\n\n| {} |\n|{}\n",
            md_escape(&ids.join(", ")),
            md_escape(caption),
            columns
                .iter()
                .map(|c| md_escape(c))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(columns.len())
        ));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|v| crate::numerics::compact(*v)).collect();
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JUnit XML report: one test case per measured judgement, named by claim and evidence
/// (stable across runs); `violated` is a failure, `inconclusive` is skipped with its reason,
/// `not measured` is left out.
pub fn junit_xml(judgements: &[Judgement]) -> String {
    let js: Vec<&Judgement> = judgements
        .iter()
        .filter(|j| j.verdict != Verdict::NotMeasured)
        .collect();
    let failures = js.iter().filter(|j| j.verdict == Verdict::Violated).count();
    let skipped = js
        .iter()
        .filter(|j| j.verdict == Verdict::Inconclusive)
        .count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"mrkl-claims\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        js.len()
    );
    for j in js {
        let name =
            xml_escape(format!("{} {}", j.claim, j.evidence.clone().unwrap_or_default()).trim());
        s.push_str(&format!(
            "  <testcase classname=\"mrkl.{}\" name=\"{name}\">",
            xml_escape(&j.claim)
        ));
        let reason = xml_escape(&j.reason);
        match j.verdict {
            Verdict::Violated => s.push_str(&format!("<failure message=\"{reason}\"/>")),
            Verdict::Inconclusive => {
                s.push_str(&format!("<skipped message=\"inconclusive: {reason}\"/>"))
            }
            _ => s.push_str(&format!(
                "<system-out>{}: {reason}</system-out>",
                j.verdict.name()
            )),
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite>\n");
    s
}

/// A plain-text table with aligned columns.
pub fn text_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.to_vec()) + "\n";
    let dashes: Vec<String> = width.iter().map(|&w| "-".repeat(w.min(64))).collect();
    out += &(line(dashes.iter().map(String::as_str).collect()) + "\n");
    for r in rows {
        out += &(line(r.iter().map(String::as_str).collect()) + "\n");
    }
    out
}

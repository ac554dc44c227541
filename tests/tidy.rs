//! Tidy data (`crate::tidy`): `raw.csv` holds every value of `result.json` in long format,
//! and the summaries of `summary.csv` are recomputed from it.

use mrkl::claims::Registry;
use mrkl::result::ResultFile;
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::SWEEP_SPEC as SPEC;

fn result() -> ResultFile {
    let spec = mrkl::spec::parse(SPEC, Path::new("replay.toml"), "replay", None).unwrap();
    let (mut results, _) = mrkl::suite::evaluate(&[spec], &Registry::builtin(), 1);
    results.remove(0)
}

fn rows(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = csv.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let body = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, body)
}

#[test]
fn raw_csv_holds_every_value_once_with_its_parameters() {
    let r = result();
    let (header, body) = rows(&mrkl::tidy::raw_csv(&r));
    assert_eq!(
        header,
        [
            "spec",
            "cell",
            "gamma_c",
            "gamma_p",
            "weight_1",
            "weight_2",
            "n",
            "gamma",
            "replication",
            "quantity",
            "value"
        ]
    );
    // 3 cells x 3 n x 6 replications x (gap + objective + expected_reward).
    assert_eq!(body.len(), 3 * 3 * 6 * 3);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &body {
        assert_eq!(row.len(), header.len());
        let cell = r
            .cells
            .iter()
            .find(|c| c.label == row[col("cell")])
            .unwrap();
        assert_eq!(
            row[col("weight_1")].parse::<f64>().unwrap(),
            cell.weights[0]
        );
        assert_eq!(
            row[col("weight_2")].parse::<f64>().unwrap(),
            cell.weights[1]
        );
        let j = cell
            .n
            .iter()
            .position(|&n| n.to_string() == row[col("n")])
            .unwrap();
        let rep: usize = row[col("replication")].parse().unwrap();
        let table = match row[col("quantity")].as_str() {
            "rkl_suboptimality" => &cell.raw,
            s => &cell.series.iter().find(|x| x.name == s).unwrap().raw,
        };
        // The CSV value parses back to the very f64 of result.json.
        assert_eq!(row[col("value")].parse::<f64>().unwrap(), table[j][rep]);
    }
}

#[test]
fn summary_means_are_the_means_of_raw_csv() {
    let r = result();
    let (h, body) = rows(&mrkl::tidy::raw_csv(&r));
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let mut sums: BTreeMap<(String, u64), (f64, usize)> = BTreeMap::new();
    for row in body
        .iter()
        .filter(|r| r[col("quantity")] == "rkl_suboptimality")
    {
        let e = sums
            .entry((row[col("cell")].clone(), row[col("n")].parse().unwrap()))
            .or_default();
        e.0 += row[col("value")].parse::<f64>().unwrap();
        e.1 += 1;
    }
    let (sh, sbody) = rows(&mrkl::tidy::summary_csv(&r));
    let scol = |name: &str| sh.iter().position(|x| x == name).unwrap();
    assert_eq!(sbody.len(), 9);
    for row in &sbody {
        let (sum, count) = sums[&(row[scol("cell")].clone(), row[scol("n")].parse().unwrap())];
        assert_eq!(count, 6);
        let mean: f64 = row[scol("mean")].parse().unwrap();
        // Same numbers summed in another order: equal to within a few ulps of the sum.
        assert!(
            (mean - sum / 6.0).abs() <= 1e-14 * mean.abs().max(1e-300) * 6.0,
            "{mean} vs {}",
            sum / 6.0
        );
        assert_eq!(row[scol("gamma_c")], "1");
        assert_eq!(row[scol("gamma_p")], "0");
    }
}

/// The result records, per cell, the escort's support (responses every reference with
/// positive weight covers) as the instance defines it, and flags a support below half of Y.
#[test]
fn results_record_the_escort_support_per_cell() {
    let text = SPEC
        .replace("responses = 4", "responses = 8\nzero_fraction = 0.5")
        .replace("references = 2", "references = 2\nconcentration = 0.5");
    let spec = mrkl::spec::parse(&text, Path::new("replay.toml"), "replay", None).unwrap();
    let (results, _) = mrkl::suite::evaluate(std::slice::from_ref(&spec), &Registry::builtin(), 1);
    for (c, cell) in results[0].cells.iter().zip(spec.cells()) {
        let sizes = spec.instance().support_sizes(&cell.weights);
        let p = c.support.as_ref().expect("an RKL cell uses the escort");
        assert_eq!(p.responses, 8);
        assert_eq!(
            p.mean,
            sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
        );
        assert_eq!(p.min, *sizes.iter().min().unwrap());
        assert_eq!(
            p.contexts_below_half,
            sizes.iter().filter(|&&s| s < 4).count()
        );
        assert_eq!(p.mostly_dropped(), p.mean < 4.0);
    }
    // Weight (1, 0): the support of reference 1 alone, which zero_fraction = 0.5 thins, so
    // some response is dropped somewhere (the check refuses an empty intersection).
    let one = &results[0].cells[1];
    assert!(one.support.as_ref().unwrap().min < 8, "{:?}", one.support);
}

//! mrkl: a testbed that checks the theory of KL-regularised RLHF with multiple reference
//! models (Aminian, Asadi, Shenfeld, Mroueh, arXiv 2502.01203) by exact simulation.
//!
//! Data flows one way, one module per concept:
//! spec -> instance -> preference data -> estimation -> policy -> gap -> engine (parallel
//! replications) -> analysis (summaries, exponents: a typed `result`) -> claims (judgements)
//! -> rendering (report, tidy CSV tables, plot). `suite` runs the pipeline for the command line and the
//! tests; `cli` only turns flags into its settings. `asymptotics` predicts each gap's
//! leading term (§8) exactly, for comparison with the measured rates.
//! The formulas are those of the project's theory document (`docs/theory.md`); doc comments
//! cite its items (D1-D7, §1-§8).

pub mod analysis;
pub mod asymptotics;
pub mod best_of_n;
pub mod binomial;
pub mod budget;
pub mod calibrate;
pub mod claims;
pub mod cli;
pub mod coverage;
pub mod dpo;
pub mod engine;
pub mod error;
pub mod estimation;
pub mod fixed_design;
pub mod fsio;
pub mod gap;
pub mod instance;
pub mod ipo;
pub mod journal;
pub mod newton;
pub mod numerics;
pub mod overrides;
pub mod pessimism;
pub mod plot;
pub mod policy;
pub mod preference;
pub mod replay;
pub mod report;
pub mod result;
pub mod solve;
pub mod spec;
pub mod statistics;
pub mod streams;
pub mod suite;
pub mod tidy;

pub use error::{Error, Result};

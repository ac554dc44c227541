//! mrkl: a testbed that checks the theory of KL-regularised RLHF with multiple reference
//! models (Aminian, Asadi, Shenfeld, Mroueh, arXiv 2502.01203) by exact simulation.
//!
//! Data flows one way, one module per concept:
//! spec -> instance -> preference data -> estimation -> policy -> gap -> engine (parallel
//! replications) -> statistics (summaries, exponents) -> report (result files).
//! The formulas are those of THEORY.md (shipped beside the project as shared/THEORY.md);
//! doc comments cite its items (D1-D7, §1-§8). `asymptotics` predicts each gap's leading
//! term (§8) exactly, for comparison with the measured rates.

pub mod asymptotics;
pub mod claims;
pub mod cli;
pub mod coverage;
pub mod dpo;
pub mod engine;
pub mod error;
pub mod estimation;
pub mod gap;
pub mod instance;
pub mod journal;
pub mod numerics;
pub mod plot;
pub mod policy;
pub mod preference;
pub mod report;
pub mod spec;
pub mod statistics;
pub mod streams;

pub use error::{Error, Result};

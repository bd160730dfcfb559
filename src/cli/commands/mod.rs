//! One file per subcommand: each turns parsed arguments into library options, runs the
//! library, prints results, and returns the exit code.

pub mod convert;
pub mod fetch;
pub mod info;
pub mod kaggle;
pub mod ls;
pub mod pipeline;
pub mod plan;
pub mod plot;
pub mod sync;
pub mod verify;

//! Experiments that combine training, storage and statistics: the factorial architecture study
//! (the paper's RQ2) and the comparison of tuning strategies (RQ1).

pub mod analysis;
pub mod factorial;
pub mod strategies;

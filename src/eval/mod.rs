//! Scoring tidings against real pages in `../shared/eval`: extraction
//! against hand-labelled main text, alerts against page histories.

pub mod extraction;
pub mod histories;

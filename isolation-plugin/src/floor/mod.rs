//! floor (doc to come)

pub(crate) mod errors;
pub(crate) mod private_fs;
pub(crate) mod process;

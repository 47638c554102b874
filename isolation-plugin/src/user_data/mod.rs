//! user_data (doc to come)

pub(crate) mod drift;
pub(crate) mod rescue;
pub(crate) mod shared_data;

//! What every bench binary shares: criterion's base configuration.

use std::time::Duration;

use criterion::Criterion;

/// No plots (criterion is built without them), short warm-up; groups set
/// their own sample size and measurement time. Command-line options
/// (`--sample-size`, `--measurement-time`, a filter, ...) still apply.
pub fn criterion() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args()
}

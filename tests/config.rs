//! Configuration: Crawlee's defaults, one test per validation rule, and the
//! environment variables.

use std::ffi::OsString;
use std::time::Duration;

use tower_snapshotter::config::__private::ENV_VARS;
use tower_snapshotter::{Config, ConfigBuilder, ConfigError};

fn rejects(b: ConfigBuilder, field: &str, value: &str, allowed: &str) {
    let err = b.build().expect_err("must be rejected");
    assert_eq!(err.field(), field, "{err}");
    let text = err.to_string();
    assert!(text.contains(field), "{text}");
    assert!(text.contains(value), "{text} should show the value {value}");
    assert!(text.contains(allowed), "{text} should show the range {allowed}");
}

#[test]
fn defaults_are_crawlees() {
    let c = Config::default();
    assert_eq!(c.event_loop_snapshot_interval(), Duration::from_millis(500));
    assert_eq!(c.client_snapshot_interval(), Duration::from_secs(1));
    assert_eq!(c.system_info_interval(), Duration::from_secs(1));
    assert_eq!(c.snapshot_history(), Duration::from_secs(30));
    assert_eq!(c.max_used_cpu_ratio(), 0.95);
    assert_eq!(c.max_used_memory_ratio(), 0.9);
    assert_eq!(c.max_memory_size(), None);
    assert_eq!(c.available_memory_ratio(), 0.25);
    assert_eq!(c.reserve_memory_ratio(), 0.5);
    assert_eq!(c.memory_warning_cooldown_period(), Duration::from_secs(10));
    assert_eq!(c.max_event_loop_delay(), Duration::from_millis(50));
    assert_eq!(c.max_client_errors(), 3, "Crawlee JS's 3, see the config docs");
    assert_eq!(c.client_rate_limit_error_retry_count(), 2);
    let s = c.status();
    assert_eq!(s.max_snapshot_age(), Duration::from_secs(5));
    assert_eq!(s.cpu_overload_threshold(), 0.4);
    assert_eq!(s.memory_overload_threshold(), 0.2);
    assert_eq!(s.event_loop_overload_threshold(), 0.6);
    assert_eq!(s.client_overload_threshold(), 0.3);
    assert!(c.validate().is_ok());
}

#[test]
fn ratios_must_be_in_zero_to_one() {
    for (field, set) in [
        (
            "max_used_cpu_ratio",
            ConfigBuilder::max_used_cpu_ratio as fn(ConfigBuilder, f64) -> ConfigBuilder,
        ),
        ("max_used_memory_ratio", ConfigBuilder::max_used_memory_ratio),
        ("available_memory_ratio", ConfigBuilder::available_memory_ratio),
    ] {
        rejects(set(Config::builder(), 0.0), field, "0", "(0, 1]");
        rejects(set(Config::builder(), 1.5), field, "1.5", "(0, 1]");
        rejects(set(Config::builder(), -0.1), field, "-0.1", "(0, 1]");
        rejects(set(Config::builder(), f64::NAN), field, "NaN", "(0, 1]");
        assert!(
            set(Config::builder(), 1.0).build().is_ok(),
            "{field} = 1 is allowed"
        );
    }
}

#[test]
fn thresholds_and_reserve_must_be_in_zero_to_one_inclusive() {
    for (field, set) in [
        (
            "cpu_overload_threshold",
            ConfigBuilder::cpu_overload_threshold as fn(ConfigBuilder, f64) -> ConfigBuilder,
        ),
        (
            "memory_overload_threshold",
            ConfigBuilder::memory_overload_threshold,
        ),
        (
            "event_loop_overload_threshold",
            ConfigBuilder::event_loop_overload_threshold,
        ),
        (
            "client_overload_threshold",
            ConfigBuilder::client_overload_threshold,
        ),
        ("reserve_memory_ratio", ConfigBuilder::reserve_memory_ratio),
    ] {
        rejects(set(Config::builder(), 1.01), field, "1.01", "[0, 1]");
        rejects(set(Config::builder(), -1.0), field, "-1", "[0, 1]");
        assert!(set(Config::builder(), 0.0).build().is_ok());
        assert!(set(Config::builder(), 1.0).build().is_ok());
    }
}

#[test]
fn intervals_must_be_positive_and_bounded() {
    for (field, set) in [
        (
            "event_loop_snapshot_interval",
            ConfigBuilder::event_loop_snapshot_interval as fn(ConfigBuilder, Duration) -> ConfigBuilder,
        ),
        (
            "client_snapshot_interval",
            ConfigBuilder::client_snapshot_interval,
        ),
    ] {
        rejects(
            set(Config::builder(), Duration::ZERO),
            field,
            "0ns",
            "1ms ..= 3600s",
        );
        rejects(
            set(Config::builder(), Duration::from_secs(3601)),
            field,
            "3601s",
            "1ms ..= 3600s",
        );
    }
}

#[test]
fn system_info_interval_respects_sysinfos_minimum() {
    rejects(
        Config::builder().system_info_interval(Duration::from_millis(100)),
        "system_info_interval",
        "100ms",
        "200ms",
    );
    assert!(Config::builder()
        .system_info_interval(Duration::from_millis(200))
        .build()
        .is_ok());
}

#[test]
fn history_cannot_be_shorter_than_the_current_window() {
    rejects(
        Config::builder().snapshot_history(Duration::from_secs(4)),
        "snapshot_history",
        "4s",
        "max_snapshot_age",
    );
    rejects(
        Config::builder().snapshot_history(Duration::from_secs(25 * 3600)),
        "snapshot_history",
        "90000s",
        "86400s",
    );
    rejects(
        Config::builder().max_snapshot_age(Duration::ZERO),
        "max_snapshot_age",
        "0ns",
        "1ms",
    );
}

#[test]
fn other_rules() {
    rejects(
        Config::builder().max_memory_size(Some(0)),
        "max_memory_size",
        "0",
        "1 ..=",
    );
    rejects(
        Config::builder().client_rate_limit_error_retry_count(1001),
        "client_rate_limit_error_retry_count",
        "1001",
        "0 ..= 1000",
    );
    rejects(
        Config::builder().max_client_errors(u64::from(u32::MAX) + 1),
        "max_client_errors",
        "4294967296",
        "0 ..= 4294967295",
    );
    rejects(
        Config::builder().memory_warning_cooldown_period(Duration::from_secs(90_000)),
        "memory_warning_cooldown_period",
        "90000s",
        "86400s",
    );
    rejects(
        Config::builder().max_event_loop_delay(Duration::from_secs(3601)),
        "max_event_loop_delay",
        "3601s",
        "3600s",
    );
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    }
}

#[test]
fn every_variable_is_read() {
    let c = Config::from_lookup(env(&[
        ("SNAPSHOTTER_EVENT_LOOP_SNAPSHOT_INTERVAL_MS", "250"),
        ("SNAPSHOTTER_CLIENT_SNAPSHOT_INTERVAL_MS", "2000"),
        ("SNAPSHOTTER_SYSTEM_INFO_INTERVAL_MS", "500"),
        ("SNAPSHOTTER_SNAPSHOT_HISTORY_MS", "60000"),
        ("SNAPSHOTTER_MAX_USED_CPU_RATIO", "0.8"),
        ("SNAPSHOTTER_MAX_USED_MEMORY_RATIO", "0.7"),
        ("SNAPSHOTTER_MAX_MEMORY_SIZE", "1073741824"),
        ("SNAPSHOTTER_AVAILABLE_MEMORY_RATIO", "0.5"),
        ("SNAPSHOTTER_RESERVE_MEMORY_RATIO", "0.25"),
        ("SNAPSHOTTER_MEMORY_WARNING_COOLDOWN_PERIOD_MS", "0"),
        ("SNAPSHOTTER_MAX_EVENT_LOOP_DELAY_MS", "100"),
        ("SNAPSHOTTER_MAX_CLIENT_ERRORS", "1"),
        ("SNAPSHOTTER_CLIENT_RATE_LIMIT_ERROR_RETRY_COUNT", "0"),
        ("SNAPSHOTTER_MAX_SNAPSHOT_AGE_MS", "10000"),
        ("SNAPSHOTTER_CPU_OVERLOAD_THRESHOLD", "0.5"),
        ("SNAPSHOTTER_MEMORY_OVERLOAD_THRESHOLD", "0.1"),
        ("SNAPSHOTTER_EVENT_LOOP_OVERLOAD_THRESHOLD", "0.7"),
        ("SNAPSHOTTER_CLIENT_OVERLOAD_THRESHOLD", "0.2"),
    ]))
    .expect("valid");
    assert_eq!(c.event_loop_snapshot_interval(), Duration::from_millis(250));
    assert_eq!(c.client_snapshot_interval(), Duration::from_secs(2));
    assert_eq!(c.system_info_interval(), Duration::from_millis(500));
    assert_eq!(c.snapshot_history(), Duration::from_secs(60));
    assert_eq!(c.max_used_cpu_ratio(), 0.8);
    assert_eq!(c.max_used_memory_ratio(), 0.7);
    assert_eq!(c.max_memory_size(), Some(1 << 30));
    assert_eq!(c.available_memory_ratio(), 0.5);
    assert_eq!(c.reserve_memory_ratio(), 0.25);
    assert_eq!(c.memory_warning_cooldown_period(), Duration::ZERO);
    assert_eq!(c.max_event_loop_delay(), Duration::from_millis(100));
    assert_eq!(c.max_client_errors(), 1);
    assert_eq!(c.client_rate_limit_error_retry_count(), 0);
    assert_eq!(c.status().max_snapshot_age(), Duration::from_secs(10));
    assert_eq!(c.status().cpu_overload_threshold(), 0.5);
    assert_eq!(c.status().memory_overload_threshold(), 0.1);
    assert_eq!(c.status().event_loop_overload_threshold(), 0.7);
    assert_eq!(c.status().client_overload_threshold(), 0.2);
    assert_eq!(ENV_VARS.len(), 18, "every variable above is listed");
    assert_eq!(
        Config::from_lookup(|_| None),
        Ok(Config::default()),
        "unset leaves defaults"
    );
}

#[test]
fn a_malformed_variable_is_an_error_naming_it() {
    for (var, _) in ENV_VARS {
        for junk in ["abc", "-1", "1.5.2", "", "1e400x"] {
            let err = Config::from_lookup(env(&[(var, junk)])).expect_err("malformed");
            let text = err.to_string();
            assert!(text.contains(var), "{text}");
            assert!(matches!(err, ConfigError::Env { .. }), "{text}");
        }
    }
}

#[test]
fn an_out_of_range_variable_names_the_variable() {
    let err = Config::from_lookup(env(&[("SNAPSHOTTER_MAX_USED_CPU_RATIO", "2")])).unwrap_err();
    assert!(
        err.to_string().contains("SNAPSHOTTER_MAX_USED_CPU_RATIO"),
        "{err}"
    );
    assert_eq!(err.field(), "max_used_cpu_ratio");
    assert!(err.allowed().contains("(0, 1]"));
}

#[test]
fn from_env_reads_the_process_environment() {
    // The only test that touches the real environment.
    std::env::set_var("SNAPSHOTTER_MAX_CLIENT_ERRORS", "7");
    let c = Config::from_env();
    std::env::remove_var("SNAPSHOTTER_MAX_CLIENT_ERRORS");
    assert_eq!(c.expect("valid").max_client_errors(), 7);
}

//! Prints the live status of a default `Snapshotter` once a second.
//!
//! ```text
//! cargo run --release --example status -- --seconds 5
//! ```

use std::time::Duration;

use tower_snapshotter::{Config, Snapshotter};

fn seconds_arg() -> Result<u64, String> {
    let mut args = std::env::args().skip(1);
    let mut seconds = 10;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let v = args.next().ok_or("--seconds needs a value")?;
                seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: not a whole number: {v:?}"))?;
            }
            "-h" | "--help" => {
                println!("usage: status [--seconds N]   (default 10)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(seconds)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = seconds_arg().unwrap_or_else(|e| {
        eprintln!("status: {e}");
        std::process::exit(2)
    });
    let snapshotter = Snapshotter::new(Config::from_env()?);
    snapshotter.start()?;
    let status = snapshotter.system_status();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_millis(1100),
        Duration::from_secs(1),
    );
    for i in 1..=seconds {
        tick.tick().await;
        let info = status.current()?;
        let cpu = snapshotter
            .cpu_sample(Some(Duration::ZERO))?
            .last()
            .map(|s| s.used_ratio);
        let mem = snapshotter.memory_sample(None)?.last().copied();
        let lag = snapshotter.event_loop_sample(None)?.last().map(|s| s.delay);
        let raw = format!(
            "[cpu {} · mem {} · lag {}]",
            cpu.map_or("n/a".into(), |r| format!("{:.0}%", r * 100.0)),
            mem.map_or("n/a".into(), |m| format!(
                "{} of {} MiB",
                m.current_size >> 20,
                m.max_memory_size >> 20
            )),
            lag.map_or("n/a".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)),
        );
        let verdict = if info.is_system_idle() { "ok" } else { "OVERLOADED" };
        println!("{i:>3}s  {info}  {raw}  {verdict}");
    }
    snapshotter.stop()?;
    Ok(())
}

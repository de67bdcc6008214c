//! Scenario 9, `models`: the layer against every testkit limiter model, one
//! table of its own and a summary per variant.

use std::io::Write as _;

use crate::model_matrix::{
    batches, model_groups, model_variants, told_variant, ModelRun, MODEL_BATCH_SECS, MODEL_FROM, MODEL_SECS,
};
use crate::model_run::{model_batch, plot_model, print_model_row};
use crate::plots::Series;

/// Scenario 9: every testkit limiter model at 3× its allowed rate, 15 s
/// each, real time; one table of its own, rows printed per model once all
/// its variants ran, then a count per variant of the cells meeting the
/// target.
pub(crate) fn models() {
    let groups = model_groups();
    let variants = model_variants();
    let references = groups
        .iter()
        .filter(|g| g.first().and_then(|c| told_variant(c.spec)).is_some())
        .count();
    let n_batches: usize =
        groups.iter().map(|g| batches(g).len()).sum::<usize>() * variants.len() + references;
    let n_cells: usize = groups.iter().map(Vec::len).sum();
    if n_batches == 0 {
        println!("\nmodels: nothing chosen (SCENARIO_MODELS / SCENARIO_VARIANTS)");
        return;
    }
    println!(
        "\nmodels: {n_cells} model × rate cells × {} variants in {n_batches} batches of ~{MODEL_BATCH_SECS} s: about {:.0} min",
        variants.len(),
        n_batches as f64 * MODEL_BATCH_SECS / 60.0
    );
    println!();
    println!("| model | allowed | variant | goodput (of allowed) | refused | dropped | target |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let _ = std::io::stdout().flush();
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let mut all: Vec<ModelRun> = Vec::new();
    for group in &groups {
        let mut runs: Vec<(usize, usize, ModelRun)> = Vec::new();
        // Under a concurrency limit, the client told C is the reference:
        // run it first, whatever the chosen variants.
        let reference = group.first().and_then(|c| told_variant(c.spec));
        let mut told = None;
        if let Some(v) = reference {
            eprintln!(
                "[{:4.0} s] reference: {} × {}",
                started.elapsed().as_secs_f64(),
                group[0].spec,
                v.name()
            );
            for r in model_batch(group, v) {
                told = Some(r.served_per_s);
                runs.push((0, usize::MAX, r));
            }
        }
        for (vi, &v) in variants.iter().enumerate() {
            if Some(v) == reference {
                continue;
            }
            for batch in batches(group) {
                let names: Vec<String> = batch.iter().map(|c| c.spec.to_string()).collect();
                eprintln!(
                    "[{:4.0} s] batch {}/{n_batches}: {} × {}",
                    started.elapsed().as_secs_f64(),
                    done + 1,
                    names.join(", "),
                    v.name()
                );
                for r in model_batch(&batch, v) {
                    let ci = group.iter().position(|c| c.spec == r.cell.spec).unwrap_or(0);
                    runs.push((ci, vi, r));
                }
                done += 1;
            }
        }
        for (_, _, r) in &mut runs {
            r.told = told;
        }
        runs.sort_by_key(|(ci, vi, _)| (*ci, *vi));
        for (ci, cell) in group.iter().enumerate() {
            let mine: Vec<(String, Series)> = runs
                .iter()
                .filter(|(c, _, _)| *c == ci)
                .map(|(_, _, r)| (r.variant.name(), r.series.clone()))
                .collect();
            plot_model(cell, &mine);
        }
        for (_, _, r) in runs {
            print_model_row(&r);
            all.push(r);
        }
    }
    println!();
    println!(
        "models: cells meeting the target (≥ 95 % of the allowed rate, ≤ 1 % refused, seconds {MODEL_FROM}–{MODEL_SECS} at the server), {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for v in &variants {
        let mine: Vec<&ModelRun> = all.iter().filter(|r| r.variant == *v && !r.is_told()).collect();
        let met = mine.iter().filter(|r| r.met()).count();
        let missed: Vec<String> = mine
            .iter()
            .filter(|r| !r.met())
            .map(|r| r.cell.spec.to_string())
            .collect();
        println!(
            "- {}: {met} / {}{}",
            v.name(),
            mine.len(),
            if missed.is_empty() || missed.len() > 12 {
                String::new()
            } else {
                format!(" (missed: {})", missed.join("; "))
            }
        );
    }
}

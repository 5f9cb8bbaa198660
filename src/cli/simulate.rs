//! `retentiond simulate`: a policy over time, on generated backups, as the daemon would run
//! it; the steady state it reaches, and optionally its picture.

use super::shared::{Failure, Outcome, config_path, instant, write_failure};
use super::{Cli, Format};
use crate::exit;
use crate::policy::{self, Schedule};
use crate::retention::CalendarDuration;
use crate::review::{simulate, svg};
use crate::runner;
use std::io::Write;
use std::path::Path;

pub(super) struct SimulateArgs<'a> {
    pub(super) policy: &'a str,
    pub(super) policies: Option<&'a Path>,
    pub(super) cadence: Option<&'a str>,
    pub(super) period: &'a str,
    pub(super) from: Option<&'a str>,
    pub(super) groups: usize,
    pub(super) format: Format,
    pub(super) svg: Option<&'a Path>,
}

/// The backup job assumed when neither `--cadence` nor the policy's schedule says.
const DEFAULT_CADENCE: &str = "0 3 * * *";

pub(super) fn simulate(cli: &Cli, args: SimulateArgs, out: &mut dyn Write) -> Outcome {
    let usage = |message: String| Failure::new(exit::USAGE, message);
    let config = match config_path(cli) {
        Some((path, _)) => Some(policy::load_config(&path).map_err(Failure::invalid)?),
        None if args.policies.is_some() => None,
        None => {
            return Err(Failure::new(
                exit::INVALID,
                "no config file: pass --config PATH (or set RETENTIOND_CONFIG), or --policies PATH",
            ));
        }
    };
    let folders = match (args.policies, &config) {
        (Some(path), _) => vec![path.to_path_buf()],
        (None, Some(config)) => config.policies.clone(),
        (None, None) => unreachable!("a config is loaded unless --policies is given"),
    };
    let (policies, errors) = policy::load_policies(&folders);
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
    }
    let Some(policy) = policies.iter().find(|p| p.name == args.policy) else {
        let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "no policy named `{}`{} (policies: {})",
                args.policy,
                policy::diag::did_you_mean(args.policy, names.iter().copied()),
                names.join(", ")
            ),
        ));
    };
    let zone = runner::zone(policy, config.as_ref());
    let cadence = match (args.cadence, &policy.schedule) {
        (Some(text), _) => Schedule::parse(text).map_err(|e| usage(format!("--cadence: {e}")))?,
        (None, Some(schedule)) => schedule.clone(),
        (None, None) => Schedule::parse(DEFAULT_CADENCE).expect("a valid cron line"),
    };
    let runs = policy.schedule.clone().unwrap_or_else(|| cadence.clone());
    let from = instant("--from", args.from)?;
    let period = CalendarDuration::parse(args.period)
        .map_err(|e| usage(format!("--for {}: {e}", args.period)))?;
    if period.is_zero() {
        return Err(usage(format!(
            "--for {}: the period must be longer than 0",
            args.period
        )));
    }
    let until = period.checked_after(from, &zone).ok_or_else(|| {
        usage(format!(
            "--for {}: the period ends past the year 9999, the last that can be computed; simulate a shorter one",
            args.period
        ))
    })?;
    if args.groups == 0 {
        return Err(usage("--groups must be at least 1".into()));
    }
    let setup = simulate::Setup {
        policy,
        zone: zone.clone(),
        cadence: &cadence,
        runs: &runs,
        from,
        until,
        groups: args.groups,
        timeline: args.svg.is_some(),
        grace: runner::grace(policy, config.as_ref().and_then(|c| c.default_grace)),
    };
    if let Some(why) = simulate::too_large(&setup) {
        return Err(usage(why));
    }
    let result = simulate::simulate(&setup).map_err(usage)?;
    match args.format {
        Format::Text => simulate::text(out, &result, &zone),
        Format::Json => serde_json::to_writer_pretty(&mut *out, &result)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out)),
    }
    .map_err(write_failure)?;
    if let Some(path) = args.svg {
        let picture = svg::render(
            &format!("retentiond simulate {}", policy.name),
            &[svg::simulation_section(&result)],
            &zone,
        );
        write_svg(path, &picture)?;
    }
    Ok(exit::OK)
}

/// Writes a picture; the error names the file.
pub(super) fn write_svg(path: &Path, picture: &str) -> Result<(), Failure> {
    std::fs::write(path, picture).map_err(|e| {
        Failure::new(
            exit::INVALID,
            format!("cannot write the picture to {}: {e}", path.display()),
        )
    })
}

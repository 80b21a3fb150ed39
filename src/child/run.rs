//! One `exec` run from first start to final exit: spawning the child with its output
//! plumbing, supervising it, restarting it when watched secrets change, and backing off
//! when a restarted child keeps failing at once.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::Signal;

use super::output::Output;
use super::signals::{Attachment, Outcome, Paused, Supervisor};
use super::{environment::ChildEnvironment, ResolvedCommand};
use crate::environment::Environment;
use crate::secret::SecretValue;

/// A restarted child that fails within this time "failed right after start".
const QUICK_FAILURE: Duration = Duration::from_secs(5);
/// Backoff before restarting such a child: 1 s, doubled each time, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// After this many quick failures in a row keywrap gives up and passes the status on.
const MAX_QUICK_FAILURES: u32 = 5;

/// Everything that stays the same across restarts.
pub struct Plan<'a> {
    pub command: &'a ResolvedCommand,
    /// The inherited environment with env-file settings layered on.
    pub env: &'a Environment,
    pub run_id: &'a str,
    pub also_remove: &'a [String],
    pub restart_signal: Signal,
    pub restart_timeout: Duration,
}

/// Runs the child until it ends for good; returns the status to pass on.
pub fn run(
    plan: &Plan,
    mut values: Vec<(String, SecretValue)>,
    output: &Output,
    supervisor: &mut Supervisor,
) -> Result<ExitStatus> {
    let resize = || output.resize();
    let attachment = Attachment {
        own_terminal: output.uses_pty(),
        own_group: !output.uses_pty() && super::signals::child_needs_own_group(),
        on_resize: output.uses_pty().then_some(&resize as &dyn Fn()),
    };
    let mut restarted = false;
    let mut quick_failures = 0;
    loop {
        let child_env =
            ChildEnvironment::build(plan.env, plan.run_id, plan.also_remove, values.clone());
        let (stdio, filters) = output.attach()?;
        let started = Instant::now();
        let mut process = super::spawn(plan.command, &child_env, stdio, attachment.own_group)?;
        drop(child_env);
        let status = match supervisor.supervise(&mut process, &attachment)? {
            Outcome::Exited(status) => status,
            Outcome::NewValues(new) => {
                crate::log::warn("a watched secret has a new version; restarting the command");
                supervisor.stop(
                    &mut process,
                    plan.restart_signal,
                    plan.restart_timeout,
                    &attachment,
                )?;
                filters.drain();
                output.detach();
                output.remask(&new);
                values = new;
                restarted = true;
                quick_failures = 0;
                continue;
            }
        };
        filters.drain();
        output.detach();
        let failed_quickly = restarted && !status.success() && started.elapsed() < QUICK_FAILURE;
        if supervisor.stopping() || !failed_quickly {
            return Ok(status);
        }
        quick_failures += 1;
        if quick_failures > MAX_QUICK_FAILURES {
            crate::log::warn(format_args!(
                "the command failed right after each of {MAX_QUICK_FAILURES} restarts; giving up"
            ));
            return Ok(status);
        }
        let pause = Duration::from_secs(1 << (quick_failures - 1)).min(MAX_BACKOFF);
        crate::log::warn(format_args!(
            "the restarted command failed at once (exit status {}); starting it again in {}s",
            super::exit_code(status),
            pause.as_secs()
        ));
        match supervisor.pause(pause) {
            Paused::Elapsed => {}
            Paused::Stopped => return Ok(status),
            Paused::NewValues(new) => {
                output.remask(&new);
                values = new;
            }
        }
    }
}

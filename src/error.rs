//! Errors that every layer raises and the command line turns into exit codes.
//!
//! A leaf: it imports nothing of ours, so any module can use it without
//! pulling in the command layer (`cli::exit_code` maps these to exit codes).

/// A mistake in how the station was invoked or configured, beyond what clap
/// checks: the message says what to change (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A refusal that scripts must see as a non-zero exit (7), after the answer
/// was printed: a STOP or INTERCEPT at the bench, a parcel refused at handover.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// An error and its causes on one line, each cause once: error types often
/// name their cause already, so a link is added only when it says more.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// Whether writing the output failed because its reader went away
/// (`station export | head`): not a failure of the station's.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn one_line_adds_only_causes_that_say_more() {
        let err = Err::<(), _>(UsageError("no such queue".into()))
            .context("printing wave 3")
            .unwrap_err();
        assert_eq!(one_line(&err), "printing wave 3: no such queue");
        let err = Err::<(), _>(UsageError("x".into()))
            .context("x happened")
            .unwrap_err();
        assert_eq!(one_line(&err), "x happened");
    }
}

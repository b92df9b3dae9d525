//! [`all`] and [`race`]: the two most common groups, as functions.

use std::convert::Infallible;
use std::sync::{Mutex, PoisonError};

use super::error::{Cause, Failure, GroupError};
use super::{group, Builder};

/// Runs every job as a child of one fail-fast group and returns their
/// values in the order the jobs were given. The first failure cancels the
/// rest, and the result is the group's [`GroupError`]. Jobs may borrow
/// from the caller.
///
/// ```
/// let words = ["alpha", "beta", "gamma"];
/// let lens = spool::group::all(words.iter().map(|w| move || Ok::<_, String>(w.len()))).unwrap();
/// assert_eq!(lens, [5, 4, 5]);
///
/// let err = spool::group::all((0..4).map(|i| move || if i == 2 { Err(i) } else { Ok(i) }))
///     .unwrap_err();
/// assert_eq!(err.into_first(), Some(2));
/// ```
#[track_caller]
pub fn all<I, F, R, E>(jobs: I) -> Result<Vec<R>, GroupError<E>>
where
    I: IntoIterator<Item = F>,
    F: FnOnce() -> Result<R, E> + Send,
    R: Send,
    E: Send,
{
    let outcome = group(|g| {
        let handles: Vec<_> = jobs.into_iter().map(|job| g.spawn(job)).collect();
        let mut values = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.join() {
                Ok(value) => values.push(value),
                // A failure is in the group's error; a cancellation of the
                // caller unwinds `join`. What is left (a child abandoned
                // by its runtime's shutdown, or cancelled while the caller
                // was already unwinding) is reported as such.
                Err(join) => return Ok(Err(join)),
            }
        }
        Ok(Ok(values))
    })?;
    outcome.map_err(|join| GroupError::new(None, Vec::new(), Cause::Incomplete(join)))
}

/// Runs every job as a child of one group; the first to return `Ok` wins:
/// the others are cancelled (their destructors run) and its value is
/// returned. If every job fails, the result is a [`GroupError`] with all
/// their failures, in the order they happened; failures of jobs that lost
/// to a winner are dropped. With no jobs at all, it is a `GroupError`
/// saying so.
///
/// ```
/// use std::time::Duration;
///
/// let fastest = spool::group::race([30u64, 1, 60].map(|ms| {
///     move || {
///         spool::thread::sleep(Duration::from_millis(ms));
///         Ok::<_, ()>(ms)
///     }
/// }));
/// assert_eq!(fastest.unwrap(), 1);
///
/// let err = spool::group::race([1, 2].map(|i| move || Err::<(), _>(i))).unwrap_err();
/// assert_eq!(err.len(), 2);
/// ```
#[track_caller]
pub fn race<I, F, R, E>(jobs: I) -> Result<R, GroupError<E>>
where
    I: IntoIterator<Item = F>,
    F: FnOnce() -> Result<R, E> + Send,
    R: Send,
    E: Send,
{
    let winner: Mutex<Option<R>> = Mutex::new(None);
    let failures: Mutex<Vec<Failure<E>>> = Mutex::new(Vec::new());
    let mut spawned = 0usize;
    // Errors are kept here, not in the group: a failure must not cancel
    // the others (the next job may win), and must not count once one has.
    let ended = Builder::new().fail_fast(false).run(|g| {
        for job in jobs {
            spawned += 1;
            let (winner, failures) = (&winner, &failures);
            g.spawn(move || {
                match job() {
                    Ok(value) => {
                        let mut winner = winner.lock().unwrap_or_else(PoisonError::into_inner);
                        if winner.is_none() {
                            *winner = Some(value);
                            drop(winner);
                            // The losers unwind; the body, if it is still
                            // spawning, too (no later job runs).
                            g.cancel();
                        }
                    }
                    Err(error) => failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Failure::here(error, false)),
                }
                Ok::<(), Infallible>(())
            });
        }
        Ok::<(), Infallible>(())
    });
    // A panic was resumed, and a cancellation from outside unwound, in
    // `run`; what is left is the group ending normally or by its own
    // cancellation (a winner's `cancel`).
    if let Some(value) = winner.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Ok(value);
    }
    let failures = failures
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let cause = match ended {
        _ if spawned == 0 => Cause::NoJobs,
        _ if !failures.is_empty() => Cause::Failed,
        // No winner and no failure: the group's own cancellation (its
        // caller's cancellation was resumed above), or every job ended
        // without a result (abandoned by a runtime's shutdown).
        Err(GroupError {
            cause: Cause::Cancelled(cancelled),
            ..
        }) => Cause::Cancelled(cancelled),
        _ => Cause::NoResult,
    };
    Err(GroupError::new(Some("race".into()), failures, cause))
}

//! crossbeam: crossbeam-channel between OS threads (`std::thread`), the
//! channel library std's `mpsc` is built from and the OS-thread channel
//! with select and many consumers. It has only the channel rows.

use crate::child::{Failure, Measured};
use crate::syncwork;

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        // The scenario body runs on the child's main thread: main_pingpong is
        // chan_pingpong here.
        "chan_pingpong" | "main_pingpong" => {
            Ok(syncwork::sized("ns_per_round_trip", count, chans::pingpong))
        }
        _ => match syncwork::parse_matrix(scenario) {
            Some((shape, cap)) => Ok(syncwork::sized("ns_per_msg", count, |n| {
                chans::matrix(shape, cap, n)
            })),
            None => Err(Failure::NotApplicable(
                "crossbeam-channel on OS threads appears in the channel rows only".into(),
            )),
        },
    }
}

/// The channel scenarios between OS threads, the scenario body on the main
/// thread.
mod chans {
    crossbeam_api_scenarios!(crossbeam_channel, std::thread::spawn);
}

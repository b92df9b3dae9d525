//! The `select!` and `select_biased!` macros (crossbeam-channel's syntax),
//! built on [`Select`](super::Select): the arms are parsed into a list,
//! each channel expression is bound once (so temporaries such as
//! `after(d)` live long enough), the operations are added in arm order and
//! the chosen arm's body runs with the operation's result.

/// Waits on several channel operations; crossbeam-channel's syntax.
///
/// ```text
/// select! {
///     recv(receiver) -> result => expression,
///     send(sender, message) -> result => expression,
///     default => expression,              // if nothing is ready now
///     default(timeout) => expression,     // if nothing is ready in time
/// }
/// ```
/// `result` is a pattern matched against the `Result` of the operation;
/// `message` is evaluated only if its send is chosen. As in
/// crossbeam-channel, the argument lists may end with a comma
/// (`recv(r,)`, `send(s, msg,)`, `default(timeout,)`), `default()` is
/// `default`, an arm whose body is a block needs no comma after it, the
/// last arm needs none at all, and the `default` arm may come anywhere
/// (at most one). An empty `select! {}` does not compile. Among ready
/// operations one is chosen at random. Operations on disconnected
/// channels are ready and complete with an error.
///
/// Waiting is a cancellation point, as in [`Select::select`]: a cancelled
/// `select!` withdraws every operation and unwinds without running an arm
/// (while the thread is already unwinding, a `default(timeout)` arm runs
/// at once; without one, it blocks as usual).
///
/// [`Select::select`]: crate::sync::mpmc::Select::select
///
/// ```
/// use spool::sync::mpmc::{bounded, select, unbounded};
/// use std::time::Duration;
///
/// let (s1, r1) = unbounded();
/// let (s2, r2) = bounded(1);
/// s1.send(10).unwrap();
/// select! {
///     recv(r1) -> msg => assert_eq!(msg, Ok(10)),
///     send(s2, 20) -> res => res.unwrap(),
/// }
/// select! {
///     recv(r2) -> msg => assert_eq!(msg, Ok(20)),
///     default(Duration::from_millis(100)) => {}
/// }
/// ```
///
/// ```compile_fail
/// spool::sync::mpmc::select! {}
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __spool_select {
    () => {
        compile_error!("empty `select!` block")
    };

    // ----- parse: split the tokens into arms, crossbeam-channel's grammar:
    // `case(args) [-> pat] => body`, the body a block (a comma after it
    // optional) or an expression (a comma after it unless it is the last);
    // `default =>` is `default() =>`. -----
    (@parse $mode:tt $arms:tt $default:tt , $($rest:tt)*) => {
        $crate::__spool_select!(@parse $mode $arms $default $($rest)*)
    };
    (@parse $mode:tt $arms:tt $default:tt default => $($rest:tt)*) => {
        $crate::__spool_select!(@parse $mode $arms $default default() => $($rest)*)
    };
    (@parse $mode:tt $arms:tt $default:tt
        $case:ident ($($args:tt)*) $(-> $p:pat)? => { $($body:tt)* }, $($rest:tt)*) => {
        $crate::__spool_select!(@arm $mode $arms $default ($($rest)*)
            $case ($($args)*) ($($p)?) ({ $($body)* }))
    };
    (@parse $mode:tt $arms:tt $default:tt
        $case:ident ($($args:tt)*) $(-> $p:pat)? => $body:expr_2021, $($rest:tt)*) => {
        $crate::__spool_select!(@arm $mode $arms $default ($($rest)*)
            $case ($($args)*) ($($p)?) ($body))
    };
    (@parse $mode:tt $arms:tt $default:tt
        $case:ident ($($args:tt)*) $(-> $p:pat)? => { $($body:tt)* } $($rest:tt)*) => {
        $crate::__spool_select!(@arm $mode $arms $default ($($rest)*)
            $case ($($args)*) ($($p)?) ({ $($body)* }))
    };
    (@parse $mode:tt $arms:tt $default:tt
        $case:ident ($($args:tt)*) $(-> $p:pat)? => $body:expr_2021) => {
        $crate::__spool_select!(@arm $mode $arms $default ()
            $case ($($args)*) ($($p)?) ($body))
    };

    // ----- check one arm and normalise it to (recv (r) (pat) (body)),
    // (send (s) (msg) (pat) (body)); default: (now) or (timeout (t)) -----
    (@arm $mode:tt [$($arms:tt)*] $default:tt ($($rest:tt)*)
        recv ($r:expr_2021 $(,)?) ($p:pat) $body:tt) => {
        $crate::__spool_select!(@parse $mode [$($arms)* (recv ($r) ($p) $body)] $default $($rest)*)
    };
    (@arm $mode:tt [$($arms:tt)*] $default:tt ($($rest:tt)*)
        send ($s:expr_2021, $m:expr_2021 $(,)?) ($p:pat) $body:tt) => {
        $crate::__spool_select!(@parse $mode [$($arms)* (send ($s) ($m) ($p) $body)] $default $($rest)*)
    };
    (@arm $mode:tt $arms:tt [] ($($rest:tt)*) default () () $body:tt) => {
        $crate::__spool_select!(@parse $mode $arms [(now) $body] $($rest)*)
    };
    (@arm $mode:tt $arms:tt [] ($($rest:tt)*) default ($t:expr_2021 $(,)?) () $body:tt) => {
        $crate::__spool_select!(@parse $mode $arms [(timeout ($t)) $body] $($rest)*)
    };
    (@arm $mode:tt $arms:tt [$($default:tt)+] $rest:tt default $($arm:tt)*) => {
        compile_error!("a `select!` may have only one `default` arm")
    };
    (@arm $mode:tt $arms:tt $default:tt $rest:tt default $args:tt ($($p:tt)+) $body:tt) => {
        compile_error!("expected `=>` after `default` case, found `->`")
    };
    (@arm $mode:tt $arms:tt $default:tt $rest:tt $case:ident $args:tt () $body:tt) => {
        compile_error!(concat!(
            "expected `->` after `", stringify!($case), "` case, found `=>`"
        ))
    };
    (@arm $mode:tt $arms:tt $default:tt $rest:tt $case:ident $args:tt $p:tt $body:tt) => {
        compile_error!(concat!(
            "invalid `select!` arm `", stringify!($case $args), "`: expected `recv(r)`, ",
            "`send(s, msg)`, `default` or `default(timeout)`"
        ))
    };

    (@parse $mode:tt [$($arms:tt)*] $default:tt) => {
        $crate::__spool_select!(@bind $mode [$($arms)*] [] (
            __spool_r0 __spool_r1 __spool_r2 __spool_r3 __spool_r4 __spool_r5 __spool_r6
            __spool_r7 __spool_r8 __spool_r9 __spool_r10 __spool_r11 __spool_r12 __spool_r13
            __spool_r14 __spool_r15 __spool_r16 __spool_r17 __spool_r18 __spool_r19
            __spool_r20 __spool_r21 __spool_r22 __spool_r23 __spool_r24 __spool_r25
            __spool_r26 __spool_r27 __spool_r28 __spool_r29 __spool_r30 __spool_r31
        ) $default)
    };
    (@parse $mode:tt $arms:tt $default:tt $($rest:tt)+) => {
        compile_error!(concat!(
            "invalid `select!` arm: expected `recv(r) -> pat => body`, ",
            "`send(s, msg) -> pat => body`, `default => body` or `default(timeout) => body`, found `",
            stringify!($($rest)+), "`"
        ))
    };

    // ----- bind each channel expression once, keeping temporaries alive -----
    (@bind $mode:tt [] $bound:tt $names:tt $default:tt) => {{
        let mut __spool_sel = $crate::__spool_select!(@new $mode);
        $crate::__spool_select!(@register __spool_sel $bound);
        $crate::__spool_select!(@run __spool_sel $bound $default)
    }};
    (@bind $mode:tt [$arm:tt $($rest:tt)*] $bound:tt () $default:tt) => {
        compile_error!("too many arms in `select!` (at most 32)")
    };
    (@bind $mode:tt [(recv $r:tt $p:tt $b:tt) $($rest:tt)*] [$($bound:tt)*] ($name:ident $($names:ident)*) $default:tt) => {
        match &$r {
            $name => $crate::__spool_select!(@bind $mode [$($rest)*] [$($bound)* (recv $name $p $b)] ($($names)*) $default),
        }
    };
    (@bind $mode:tt [(send $s:tt $m:tt $p:tt $b:tt) $($rest:tt)*] [$($bound:tt)*] ($name:ident $($names:ident)*) $default:tt) => {
        match &$s {
            $name => $crate::__spool_select!(@bind $mode [$($rest)*] [$($bound)* (send $name $m $p $b)] ($($names)*) $default),
        }
    };

    // ----- add the operations, in order: arm k has index k -----
    (@register $sel:ident []) => {};
    (@register $sel:ident [(recv $name:ident $p:tt $b:tt) $($rest:tt)*]) => {
        $sel.recv($name);
        $crate::__spool_select!(@register $sel [$($rest)*]);
    };
    (@register $sel:ident [(send $name:ident $m:tt $p:tt $b:tt) $($rest:tt)*]) => {
        $sel.send($name);
        $crate::__spool_select!(@register $sel [$($rest)*]);
    };

    // ----- select and run the chosen arm -----
    (@run $sel:ident $bound:tt []) => {{
        let __spool_oper = $sel.select();
        $crate::__spool_select!(@dispatch __spool_oper (0usize) $bound)
    }};
    (@run $sel:ident $bound:tt [(now) $body:tt]) => {{
        // A local, not a scrutinee temporary: in a block's tail
        // expression that would outlive the `Select` it borrows.
        let __spool_res = $sel.try_select();
        match __spool_res {
            ::std::result::Result::Ok(__spool_oper) => {
                $crate::__spool_select!(@dispatch __spool_oper (0usize) $bound)
            }
            ::std::result::Result::Err(_) => $body,
        }
    }};
    (@run $sel:ident $bound:tt [(timeout $t:tt) $body:tt]) => {{
        // A local, not a scrutinee temporary: in a block's tail
        // expression that would outlive the `Select` it borrows.
        let __spool_res = $sel.select_timeout($t);
        match __spool_res {
            ::std::result::Result::Ok(__spool_oper) => {
                $crate::__spool_select!(@dispatch __spool_oper (0usize) $bound)
            }
            ::std::result::Result::Err(_) => $body,
        }
    }};

    (@dispatch $oper:ident $i:tt []) => {
        ::std::unreachable!("select!: the chosen operation has no arm")
    };
    (@dispatch $oper:ident $i:tt [(recv $name:ident $p:tt $b:tt) $($rest:tt)*]) => {
        if $oper.index() == $i {
            match $oper.recv($name) {
                $p => $b,
            }
        } else {
            $crate::__spool_select!(@dispatch $oper ($i + 1) [$($rest)*])
        }
    };
    (@dispatch $oper:ident $i:tt [(send $name:ident $m:tt $p:tt $b:tt) $($rest:tt)*]) => {
        if $oper.index() == $i {
            match $oper.send($name, $m) {
                $p => $b,
            }
        } else {
            $crate::__spool_select!(@dispatch $oper ($i + 1) [$($rest)*])
        }
    };

    (@new fair) => {
        $crate::sync::mpmc::Select::new()
    };
    (@new biased) => {
        $crate::sync::mpmc::Select::new_biased()
    };

    // ----- entry points -----
    (@biased $($tokens:tt)+) => {
        $crate::__spool_select!(@parse biased [] [] $($tokens)+)
    };
    ($($tokens:tt)+) => {
        $crate::__spool_select!(@parse fair [] [] $($tokens)+)
    };
}

/// As [`select!`](crate::sync::mpmc::select), but when several operations
/// are ready it picks the first listed instead of a random one.
///
/// ```
/// use spool::sync::mpmc::{select_biased, unbounded};
/// let (s1, r1) = unbounded();
/// let (s2, r2) = unbounded();
/// s1.send(1).unwrap();
/// s2.send(2).unwrap();
/// select_biased! {
///     recv(r1) -> v => assert_eq!(v, Ok(1)),
///     recv(r2) -> _ => panic!("r1 comes first"),
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __spool_select_biased {
    () => {
        compile_error!("empty `select_biased!` block")
    };
    ($($tokens:tt)+) => {
        $crate::__spool_select!(@biased $($tokens)+)
    };
}

//! containerd reads the gRPC code of a shim's error (its errdefs): not found, already
//! exists and failed precondition change what the client does (`ctr task kill` on an
//! exited process, a second create, a delete of a running task).

use containerd_shim::protos::ttrpc::{self, Code};

/// A ttrpc error with a status code and a message.
pub fn status(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

/// No task or process by that id.
pub fn not_found(what: impl std::fmt::Display) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("{what}: not found"))
}

/// A berth-runtime error, with the code containerd's errdefs expect for its kind.
pub fn from_berth(e: berth_runtime::Error) -> ttrpc::Error {
    use berth_runtime::Error as E;
    let code = match &e {
        E::NotFound(_) => Code::NOT_FOUND,
        E::AlreadyExists(_) => Code::ALREADY_EXISTS,
        E::BadStatus { .. } => Code::FAILED_PRECONDITION,
        E::InvalidId { .. } | E::InvalidSignal(_) | E::Config(_) | E::Bundle { .. } => {
            Code::INVALID_ARGUMENT
        }
        _ => Code::UNKNOWN,
    };
    status(code, e)
}

/// Any other failure (I/O of the shim itself, a malformed request).
pub fn other(msg: impl ToString) -> ttrpc::Error {
    status(Code::UNKNOWN, msg)
}

/// A request the shim cannot honour as asked.
pub fn invalid(msg: impl ToString) -> ttrpc::Error {
    status(Code::INVALID_ARGUMENT, msg)
}

//! The NTP client side: the packet ([`packet`]), one validated measurement from the four
//! timestamps ([`sample`]), the exchange with one server over UDP ([`query`]) and the
//! choice among servers that outvotes a liar ([`select`]).

pub mod packet;
pub mod query;
pub mod sample;
pub mod select;

pub use packet::{NtpTimestamp, Packet};
pub use sample::{Reject, Sample};

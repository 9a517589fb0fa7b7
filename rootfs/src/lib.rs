//! Root tree assembly.

//! Request checks: a missing or malformed field becomes `InvalidArgument` naming the field
//! by its CRI path (`config.metadata.name`), before anything is created.

use tonic::Status;

/// `InvalidArgument` naming `field`.
pub fn invalid(field: &str, why: &str) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// The message `field` must be present.
pub fn required<'a, T>(value: Option<&'a T>, field: &str) -> Result<&'a T, Status> {
    value.ok_or_else(|| invalid(field, "is required"))
}

/// The string `field` must not be empty.
pub fn non_empty<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(value)
}

/// A name that becomes part of paths and cgroup names: no `/`, no NUL, not `.` or `..`.
pub fn name(value: &str, field: &str) -> Result<(), Status> {
    non_empty(value, field)?;
    if value.len() > 253 {
        return Err(invalid(field, "is longer than 253 bytes"));
    }
    if value.contains(['/', '\0']) || value == "." || value == ".." {
        return Err(invalid(
            field,
            &format!("{value:?} must not contain '/' or NUL or be . or .."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_named() {
        assert!(name("nginx-1", "config.metadata.name").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            let status = name(bad, "config.metadata.name").unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with("config.metadata.name: "));
        }
        let missing = required::<u8>(None, "config.metadata").unwrap_err();
        assert_eq!(missing.message(), "config.metadata: is required");
    }
}

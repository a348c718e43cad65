//! Pre-parse guard for untrusted plist bodies.
//!
//! The `plist` crate builds values recursively and has no nesting limit: a ~60 KB body of
//! nested `<array>`s overflows the stack and aborts the whole process (see docs/crates.md).
//! So every body is scanned here with quick-xml's streaming reader (no recursion) first.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ProtocolError;

/// Deepest `<dict>`/`<array>` nesting accepted. Real Apple bodies stay under ~10 levels
/// (ProfileList results: list → profile → PayloadContent → payload → value).
pub const MAX_DEPTH: usize = 32;

/// Largest body accepted. Command results such as InstalledApplicationList on a busy Mac
/// reach a few hundred KB; 16 MiB leaves ample room while bounding memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Refuses bodies that are too large, too deep, binary, or carry a DOCTYPE internal subset
/// (entity declarations), without building any plist value.
pub fn check_plist(body: &[u8], max_depth: usize) -> Result<(), ProtocolError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    if body.starts_with(b"bplist") {
        // Devices send XML plists for check-ins and reports (A:check-in); binary would only
        // widen the attack surface.
        return Err(ProtocolError::Malformed(
            "binary plists are not accepted; send an XML plist".into(),
        ));
    }
    // The slice reader borrows its events from `body` (no copy into a buffer per event).
    let mut reader = Reader::from_reader(body);
    let mut depth = 0usize;
    let mut saw_element = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ProtocolError::Malformed(format!("not well-formed XML: {e}")))?;
        match event {
            Event::Start(start) => {
                saw_element = true;
                if is_collection(start.local_name().as_ref()) {
                    depth += 1;
                    if depth > max_depth {
                        return Err(ProtocolError::TooDeep);
                    }
                }
            }
            Event::End(end) if is_collection(end.local_name().as_ref()) => {
                depth = depth.saturating_sub(1);
            }
            Event::Empty(_) => saw_element = true,
            // Apple's DOCTYPE is only an external id; an internal subset `[...]` is where
            // entity declarations (billion laughs, external entities) live.
            Event::DocType(doctype) if doctype.as_ref().contains('[') => {
                return Err(ProtocolError::Malformed(
                    "DOCTYPE with an internal subset (entity declarations) is refused".into(),
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_element {
        return Err(ProtocolError::Malformed("body is not an XML plist".into()));
    }
    Ok(())
}

fn is_collection(name: &str) -> bool {
    name == "dict" || name == "array"
}

/// Guard then parse an XML plist whose top level must be a dictionary.
pub(super) fn parse_dict(body: &[u8]) -> Result<plist::Dictionary, ProtocolError> {
    check_plist(body, MAX_DEPTH)?;
    let value = plist::Value::from_reader_xml(body)
        .map_err(|e| ProtocolError::Malformed(format!("not a valid XML plist: {e}")))?;
    value
        .into_dictionary()
        .ok_or_else(|| ProtocolError::Malformed("top level of the plist is not a <dict>".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_arrays(levels: usize) -> Vec<u8> {
        let mut body = b"<?xml version=\"1.0\"?><plist version=\"1.0\">".to_vec();
        body.extend(b"<array>".repeat(levels));
        body.extend(b"</array>".repeat(levels));
        body.extend(b"</plist>");
        body
    }

    #[test]
    fn a_megabyte_of_nested_arrays_is_refused_before_parsing() {
        // 1 MB of "<array>" would abort the process inside plist's recursive parser.
        let body = nested_arrays(1024 * 1024 / 7);
        assert!(body.len() > 1_000_000);
        assert_eq!(check_plist(&body, MAX_DEPTH), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn unclosed_nesting_is_refused_too() {
        let mut body = b"<plist>".to_vec();
        body.extend(b"<dict><key>a</key>".repeat(200));
        assert_eq!(check_plist(&body, MAX_DEPTH), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn depth_limit_is_inclusive() {
        assert_eq!(check_plist(&nested_arrays(MAX_DEPTH), MAX_DEPTH), Ok(()));
        assert_eq!(
            check_plist(&nested_arrays(MAX_DEPTH + 1), MAX_DEPTH),
            Err(ProtocolError::TooDeep)
        );
    }

    #[test]
    fn binary_plists_are_refused_with_a_clear_message() {
        let mut bin = Vec::new();
        plist::Value::Boolean(true)
            .to_writer_binary(&mut bin)
            .expect("serialize to Vec");
        match check_plist(&bin, MAX_DEPTH) {
            Err(ProtocolError::Malformed(msg)) => assert!(msg.contains("binary"), "{msg}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn internal_dtd_subsets_are_refused() {
        let body = br#"<?xml version="1.0"?>
<!DOCTYPE plist [ <!ENTITY a "aaaaaaaaaa"> <!ENTITY b "&a;&a;&a;&a;"> ]>
<plist version="1.0"><string>&b;</string></plist>"#;
        match check_plist(body, MAX_DEPTH) {
            Err(ProtocolError::Malformed(msg)) => assert!(msg.contains("DOCTYPE"), "{msg}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn apples_doctype_and_empty_collections_pass() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>a</key><dict/><key>b</key><array/></dict></plist>"#;
        assert_eq!(check_plist(body, MAX_DEPTH), Ok(()));
    }

    #[test]
    fn non_xml_and_oversized_bodies_are_refused() {
        assert!(matches!(
            check_plist(b"hello", MAX_DEPTH),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            check_plist(b"", MAX_DEPTH),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            check_plist(b"<plist><dict></array></plist>", MAX_DEPTH),
            Err(ProtocolError::Malformed(_))
        ));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(check_plist(&big, MAX_DEPTH), Err(ProtocolError::TooLarge));
    }
}

//! The SBOM: an SPDX 2.3 JSON document of the image, from the same data as the manifest.
//!
//! One package for the image (its sha256 is the raw disk's), one per Debian package in the
//! root (version, the `.deb`'s sha256, a `pkg:deb` purl) and one per Rust crate compiled
//! into the image's binaries (a `pkg:cargo` purl, the crates.io checksum), each contained
//! in the image. Licenses are `NOASSERTION`: Berth does not analyse them, and SPDX says to
//! say so rather than guess. The document namespace and creation time derive from the
//! image's identity and `SOURCE_DATE_EPOCH`, so the SBOM is reproducible too.

use serde_json::json;

use super::crates::Crate;
use super::manifest::Facts;
use super::rfc3339;

/// What the SBOM describes.
pub struct SbomInput<'a> {
    pub facts: &'a Facts,
    pub crates: &'a [Crate],
    /// sha256 of the raw disk.
    pub disk_sha256: &'a str,
    /// "berth-xtask-0.1.0": the creating tool, as SPDX wants it.
    pub tool: &'a str,
}

/// The SPDX document as pretty JSON with a final newline.
pub fn render(input: &SbomInput) -> Vec<u8> {
    let facts = input.facts;
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": facts.name,
        "versionInfo": facts.version,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": [{"algorithm": "SHA256", "checksumValue": input.disk_sha256}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": image_comment(facts),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    let mut contain = |id: String| {
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    };
    for (i, p) in facts.packages.iter().enumerate() {
        let id = format!("SPDXRef-deb-{i}-{}", id_safe(&p.name));
        let mut purl = format!("pkg:deb/debian/{}@{}", encode(&p.name), encode(&p.version));
        if !p.architecture.is_empty() {
            purl.push_str(&format!("?arch={}", encode(&p.architecture)));
        }
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
        });
        if is_sha256(&p.sha256) {
            package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": p.sha256}]);
        }
        packages.push(package);
        contain(id);
    }
    for (i, c) in input.crates.iter().enumerate() {
        let id = format!("SPDXRef-crate-{i}-{}", id_safe(&c.name));
        let location = if c.from_crates_io() {
            format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                c.name, c.version
            )
        } else {
            "NOASSERTION".into()
        };
        let mut package = json!({
            "SPDXID": id,
            "name": c.name,
            "versionInfo": c.version,
            "downloadLocation": location,
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": format!("pkg:cargo/{}@{}", encode(&c.name), encode(&c.version)),
            }],
        });
        if let Some(sum) = c.checksum.as_deref().filter(|s| is_sha256(s)) {
            package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sum}]);
        }
        packages.push(package);
        contain(id);
    }
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", facts.name, facts.version),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/{}-{}-{}",
            id_safe(&facts.name),
            id_safe(&facts.version),
            facts.root_hash
        ),
        "creationInfo": {
            "created": rfc3339(facts.source_date_epoch),
            "creators": [format!("Tool: {}", input.tool)],
        },
        "documentDescribes": ["SPDXRef-Image"],
        "packages": packages,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn image_comment(facts: &Facts) -> String {
    let mut text = format!(
        "variant {}, dm-verity root hash {}",
        facts.variant, facts.root_hash
    );
    if let Some(kernel) = &facts.kernel {
        text.push_str(&format!(
            ", kernel {}, command line {:?}",
            kernel.version, kernel.cmdline
        ));
    }
    text
}

/// SPDX identifiers allow letters, digits, `.` and `-` only.
fn id_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Percent-encoding for purl components (Debian versions have `:`, `+` and `~`).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
#[path = "spdx_tests.rs"]
mod tests;

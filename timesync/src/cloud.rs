//! Which cloud the node runs in, from SMBIOS (`/sys/class/dmi/id`): the same fields
//! cloud-init's and the cloud guest agents' detection reads, no network needed, so a node
//! outside any cloud (QEMU) knows at once that there is no metadata service to wait for.

use std::fmt;
use std::path::Path;

/// Where the kernel shows SMBIOS.
pub const DMI_DIR: &str = "/sys/class/dmi/id";

/// Azure's fixed chassis asset tag (documented by Microsoft and used by cloud-init), all
/// seven groups: compared whole, a prefix would never match a real Azure VM.
pub const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Gce,
    Aws,
    Azure,
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cloud::Gce => "GCE",
            Cloud::Aws => "AWS",
            Cloud::Azure => "Azure",
        })
    }
}

/// The SMBIOS fields the detection reads; a missing file reads as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: String,
    pub product_name: String,
    pub product_version: String,
    pub bios_vendor: String,
    pub bios_version: String,
    pub chassis_asset_tag: String,
}

impl Dmi {
    pub fn read(dir: &Path) -> Dmi {
        let field = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        Dmi {
            sys_vendor: field("sys_vendor"),
            product_name: field("product_name"),
            product_version: field("product_version"),
            bios_vendor: field("bios_vendor"),
            bios_version: field("bios_version"),
            chassis_asset_tag: field("chassis_asset_tag"),
        }
    }

    /// GCE: vendor or product "Google". AWS: "Amazon EC2" (Nitro) or a Xen BIOS whose
    /// version names Amazon (older instance types). Azure: its asset tag.
    pub fn cloud(&self) -> Option<Cloud> {
        if self.sys_vendor == "Google" || self.product_name == "Google Compute Engine" {
            Some(Cloud::Gce)
        } else if self.sys_vendor == "Amazon EC2"
            || self.bios_vendor.starts_with("Amazon")
            || self.bios_version.to_ascii_lowercase().contains("amazon")
            || self.product_version.to_ascii_lowercase().contains("amazon")
        {
            Some(Cloud::Aws)
        } else if self.chassis_asset_tag == AZURE_ASSET_TAG {
            Some(Cloud::Azure)
        } else {
            None
        }
    }
}

impl fmt::Display for Dmi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sys_vendor {:?}, product_name {:?}, bios_vendor {:?}, chassis_asset_tag {:?}",
            self.sys_vendor, self.product_name, self.bios_vendor, self.chassis_asset_tag
        )
    }
}

/// Detects the cloud from the SMBIOS files under `dir`.
pub fn detect(dir: &Path) -> (Option<Cloud>, Dmi) {
    let dmi = Dmi::read(dir);
    (dmi.cloud(), dmi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dmi_dir(fields: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in fields {
            std::fs::write(dir.path().join(name), format!("{value}\n")).unwrap();
        }
        dir
    }

    /// SMBIOS files and their contents.
    type Fields = &'static [(&'static str, &'static str)];

    #[test]
    fn clouds_are_told_apart_by_their_smbios() {
        let cases: &[(Fields, Option<Cloud>)] = &[
            (
                &[
                    ("sys_vendor", "Google"),
                    ("product_name", "Google Compute Engine"),
                ],
                Some(Cloud::Gce),
            ),
            (
                &[("sys_vendor", "Amazon EC2"), ("bios_vendor", "Amazon EC2")],
                Some(Cloud::Aws),
            ),
            (
                &[("sys_vendor", "Xen"), ("bios_version", "4.11.amazon")],
                Some(Cloud::Aws),
            ),
            (
                &[
                    ("sys_vendor", "Microsoft Corporation"),
                    ("chassis_asset_tag", AZURE_ASSET_TAG),
                ],
                Some(Cloud::Azure),
            ),
            // Hyper-V on a desktop is not Azure.
            (
                &[
                    ("sys_vendor", "Microsoft Corporation"),
                    ("chassis_asset_tag", ""),
                ],
                None,
            ),
            (
                &[
                    ("sys_vendor", "QEMU"),
                    ("product_name", "Standard PC (Q35 + ICH9, 2009)"),
                ],
                None,
            ),
            (&[], None),
        ];
        for (fields, want) in cases {
            let dir = dmi_dir(fields);
            assert_eq!(detect(dir.path()).0, *want, "{fields:?}");
        }
    }

    /// The tag as an Azure VM's SMBIOS has it (`dmidecode -s chassis-asset-tag`), spelled
    /// out rather than through the constant: the constant was once cut to its first four
    /// groups, which no Azure VM matches.
    #[test]
    fn azure_is_found_by_its_whole_asset_tag() {
        let dir = dmi_dir(&[
            ("sys_vendor", "Microsoft Corporation"),
            ("product_name", "Virtual Machine"),
            ("chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77"),
        ]);
        assert_eq!(detect(dir.path()).0, Some(Cloud::Azure));
        // Only the whole tag: its first groups alone are not Azure's.
        let dir = dmi_dir(&[("chassis_asset_tag", "7783-7084-3265-9085")]);
        assert_eq!(detect(dir.path()).0, None);
    }
}

//! `modprobe` for the kernel's `request_module`. The root's `/usr/sbin/modprobe` is a link
//! to this binary, and the kernel runs it as `modprobe -q -- NAME` whenever something needs
//! a module that is not loaded: an nftables expression or chain type for iptables-nft, an
//! xtables match or target for kube-proxy, a socket family, a filesystem. NAME is a module
//! name or an alias from `modules.alias`; the module and its dependencies load through
//! [`ModuleLoader`], as at boot. Only loading is supported: removal, parameters and
//! configuration files are refused by name.

use std::path::Path;

use crate::console;
use crate::module_loader::ModuleLoader;
use crate::sys::Syscalls;

/// The root's module folder.
const MODULES: &str = "/usr/lib/modules";

/// Runs `modprobe ARGS` (without argv[0]); returns the exit code (0, or 1 as kmod's).
pub fn run(sys: &dyn Syscalls, args: &[String], stderr: &mut dyn FnMut(&str)) -> u8 {
    let request = match parse(args) {
        Ok(request) => request,
        Err(message) => {
            stderr(&format!("modprobe: {message}"));
            return 1;
        }
    };
    let loader = match ModuleLoader::open(sys, Path::new(MODULES)) {
        Ok(loader) => loader,
        Err(e) => {
            stderr(&format!("modprobe: FATAL: {}", console::chain(&e)));
            return 1;
        }
    };
    let mut code = 0;
    let mut wanted: Vec<String> = Vec::new();
    for name in &request.names {
        let modules = match loader.names_for(sys, name) {
            Ok(modules) => modules,
            Err(e) => {
                stderr(&format!("modprobe: FATAL: {}", console::chain(&e)));
                return 1;
            }
        };
        if modules.is_empty() {
            if !request.quiet {
                stderr(&format!(
                    "modprobe: FATAL: Module {name} not found in directory {}",
                    loader.base().display()
                ));
            }
            code = 1;
        }
        wanted.extend(modules);
    }
    // One plan for all names, so a shared dependency loads once.
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    if let Err(e) = loader.load(sys, &wanted, &mut |_, _| {}) {
        stderr(&format!("modprobe: ERROR: {}", console::chain(&e)));
        code = 1;
    }
    code
}

/// What was asked for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    names: Vec<String>,
    quiet: bool,
}

fn parse(args: &[String]) -> Result<Request, String> {
    let mut quiet = false;
    let mut all = false;
    let mut words = Vec::new();
    let mut options_done = false;
    for arg in args {
        if options_done || !arg.starts_with('-') || arg == "-" {
            words.push(arg.clone());
            continue;
        }
        match arg.as_str() {
            "--" => options_done = true,
            "-q" | "--quiet" => quiet = true,
            "-a" | "--all" => all = true,
            // No blacklist and no syslog here: accepted, as the kernel and scripts pass
            // them, and nothing changes.
            "-b" | "--use-blacklist" | "-s" | "--syslog" | "-v" | "--verbose" => {}
            other => {
                return Err(format!(
                    "unsupported option {other}: this modprobe only loads modules by name or \
                     alias (-q, -a, -b)"
                ))
            }
        }
    }
    if words.is_empty() {
        return Err("no module name given".to_owned());
    }
    if !all && words.len() > 1 {
        return Err(format!(
            "module parameters are not supported ({}): set them on the kernel command line",
            words[1..].join(" ")
        ));
    }
    Ok(Request {
        names: words,
        quiet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn node() -> Fake {
        let sys = Fake::new();
        sys.write("/proc/sys/kernel/osrelease", "6.1.0-test\n");
        let base = "/usr/lib/modules/6.1.0-test";
        sys.write(
            format!("{base}/modules.dep"),
            "kernel/net/netfilter/nf_tables.ko.zst: kernel/net/netfilter/nfnetlink.ko.zst\n\
             kernel/net/netfilter/nfnetlink.ko.zst:\n\
             kernel/net/ipv4/netfilter/nft_chain_nat.ko.zst: kernel/net/netfilter/nf_tables.ko.zst kernel/net/netfilter/nfnetlink.ko.zst\n",
        );
        sys.write(
            format!("{base}/modules.alias"),
            "alias nft-chain-2-nat nft_chain_nat\nalias nfnetlink-subsys-10 nf_tables\n",
        );
        for module in ["nf_tables", "nfnetlink"] {
            sys.write(format!("{base}/kernel/net/netfilter/{module}.ko.zst"), "m");
        }
        sys.write(
            format!("{base}/kernel/net/ipv4/netfilter/nft_chain_nat.ko.zst"),
            "m",
        );
        sys
    }

    #[test]
    fn the_kernels_request_for_an_alias_loads_the_module_after_its_dependencies() {
        let sys = node();
        let mut errors = Vec::new();
        let code = run(&sys, &args(&["-q", "--", "nft-chain-2-nat"]), &mut |l| {
            errors.push(l.to_owned())
        });
        assert_eq!(code, 0, "{errors:?}");
        assert_eq!(
            sys.loaded_modules(),
            [
                "nfnetlink.ko.zst",
                "nf_tables.ko.zst",
                "nft_chain_nat.ko.zst"
            ]
        );
    }

    #[test]
    fn a_module_name_loads_as_itself_and_several_need_all() {
        let sys = node();
        let code = run(&sys, &args(&["-a", "nfnetlink", "nf-tables"]), &mut |_| {});
        assert_eq!(code, 0);
        assert_eq!(
            sys.loaded_modules(),
            ["nfnetlink.ko.zst", "nf_tables.ko.zst"]
        );
        let mut errors = Vec::new();
        let code = run(&sys, &args(&["nf_tables", "debug=1"]), &mut |l| {
            errors.push(l.to_owned())
        });
        assert_eq!(code, 1);
        assert!(
            errors[0].contains("parameters are not supported (debug=1)"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_names_fail_quietly_with_q_and_say_so_without() {
        let sys = node();
        let mut errors = Vec::new();
        assert_eq!(
            run(&sys, &args(&["-q", "fs-ext9"]), &mut |l| errors
                .push(l.to_owned())),
            1
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            run(&sys, &args(&["fs-ext9"]), &mut |l| errors
                .push(l.to_owned())),
            1
        );
        assert_eq!(
            errors,
            ["modprobe: FATAL: Module fs-ext9 not found in directory /usr/lib/modules/6.1.0-test"]
        );
        assert!(sys.loaded_modules().is_empty());
    }

    #[test]
    fn removal_and_no_name_are_refused_by_name() {
        let sys = node();
        let mut errors = Vec::new();
        assert_eq!(
            run(&sys, &args(&["-r", "nf_tables"]), &mut |l| errors
                .push(l.to_owned())),
            1
        );
        assert_eq!(
            run(&sys, &args(&["-q"]), &mut |l| errors.push(l.to_owned())),
            1
        );
        assert!(errors[0].contains("unsupported option -r"), "{errors:?}");
        assert!(errors[1].contains("no module name"), "{errors:?}");
    }
}

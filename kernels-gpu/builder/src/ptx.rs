//! Text-level rules and edits of the PTX module.

use crate::{BuildError, KernelSpec, SM_ARCH};

/// Names of the `.entry` functions, in module order.
pub fn entries(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let rest = rest.strip_prefix(".visible ").unwrap_or(rest);
            let rest = rest.strip_prefix(".entry ")?;
            Some(rest.split(['(', ' ']).next().unwrap_or(rest).trim())
        })
        .collect()
}

/// Functions the module calls but does not define (`.extern .func`).
pub fn unresolved_calls(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix(".extern .func")?;
            // `.extern .func (.param ...) name(` or `.extern .func name(`
            let rest = rest.trim_start();
            let rest = match rest.strip_prefix('(') {
                Some(r) => r.split_once(')').map_or(r, |(_, tail)| tail),
                None => rest,
            };
            Some(rest.trim().split(['(', ' ', ';']).next().unwrap_or(rest))
        })
        .collect()
}

/// Device functions the module defines (`.func` bodies): everything is meant
/// to be inlined into the entries.
pub fn outlined_functions(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let rest = rest.strip_prefix(".visible ").unwrap_or(rest);
            let rest = rest.strip_prefix(".func")?;
            let rest = match rest.trim_start().strip_prefix('(') {
                Some(r) => r.split_once(')').map_or(r, |(_, tail)| tail),
                None => rest,
            };
            Some(rest.trim().split(['(', ' ', ';']).next().unwrap_or(rest))
        })
        .collect()
}

/// Checks the module rules: built for sm_90a, self-contained (no
/// `.extern .func`), nothing outlined (no `.func`), exactly the entries of
/// the kernel table, each with its launch bounds.
pub fn check_module(ptx: &str, kernels: &[KernelSpec]) -> Result<(), BuildError> {
    let mut problems = Vec::new();
    if !ptx
        .lines()
        .any(|l| l.trim() == format!(".target {SM_ARCH}"))
    {
        problems.push(format!(
            "no `.target {SM_ARCH}` line: built for the wrong GPU"
        ));
    }
    for name in unresolved_calls(ptx) {
        problems.push(format!(
            "unresolved call to `{name}` (`.extern .func`): the module must be \
             self-contained; inline the callee or remove the call (a panic path?)"
        ));
    }
    for name in outlined_functions(ptx) {
        problems.push(format!(
            "device function `{name}` was not inlined (`.func`): mark it #[inline(always)] \
             (host-only code such as Debug impls must be cfg'd out of nvptx64)"
        ));
    }
    let found = entries(ptx);
    for k in kernels {
        match found.iter().filter(|e| **e == k.entry).count() {
            0 => problems.push(format!("kernel table entry `{}` is missing", k.entry)),
            1 => {
                if launch_bounds_of(ptx, k.entry)
                    != Some((k.max_threads_per_block, k.min_blocks_per_sm))
                {
                    problems.push(format!("entry `{}` lacks its launch bounds", k.entry));
                }
            }
            _ => problems.push(format!("entry `{}` defined twice", k.entry)),
        }
    }
    for e in &found {
        if !kernels.iter().any(|k| k.entry == *e) {
            problems.push(format!(
                "entry `{e}` is not in the kernel table (abi/table.rs)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BuildError::Ptx(problems))
    }
}

/// Writes `.maxntid N, 1, 1` and `.minnctapersm M` after each entry's
/// parameter list.
///
/// rustc has no attribute for these; without a register cap at entry ptxas
/// ignores `setmaxnreg` (warning C7508, hopper-notes.md section 2).
pub fn patch_launch_bounds(ptx: &str, kernels: &[KernelSpec]) -> Result<String, BuildError> {
    let mut out = String::with_capacity(ptx.len() + 64 * kernels.len());
    let mut pending: Option<&KernelSpec> = None;
    for line in ptx.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(name) = entry_name(line) {
            pending = kernels.iter().find(|k| k.entry == name);
        }
        // The parameter list ends at the first line ending in `)`, which may
        // be the `.entry` line itself for a kernel without parameters.
        if let Some(k) = pending
            && line.trim_end().ends_with(')')
        {
            out.push_str(&format!(
                ".maxntid {}, 1, 1\n.minnctapersm {}\n",
                k.max_threads_per_block, k.min_blocks_per_sm
            ));
            pending = None;
        }
    }
    if let Some(k) = pending {
        return Err(BuildError::Ptx(vec![format!(
            "could not find the end of the parameter list of `{}`",
            k.entry
        )]));
    }
    Ok(out)
}

fn entry_name(line: &str) -> Option<&str> {
    entries(line).into_iter().next()
}

/// The text of `entry`, from its `.entry` line to the next entry or the end.
pub fn function_text<'a>(ptx: &'a str, entry: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in ptx.split_inclusive('\n') {
        match (start, entry_name(line)) {
            (None, Some(name)) if name == entry => start = Some(offset),
            (Some(s), Some(_)) => return Some(&ptx[s..offset]),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|s| &ptx[s..])
}

/// `(maxntid.x, minnctapersm)` declared for `entry`, if any.
pub fn launch_bounds_of(ptx: &str, entry: &str) -> Option<(u32, u32)> {
    let mut lines = ptx.lines().skip_while(|l| entry_name(l) != Some(entry));
    lines.next()?;
    let mut maxntid = None;
    let mut minnctapersm = None;
    for line in lines {
        let line = line.trim();
        if line.starts_with('{') {
            break;
        }
        if let Some(v) = line.strip_prefix(".maxntid ") {
            maxntid = v.split(',').next().and_then(|x| x.trim().parse().ok());
        }
        if let Some(v) = line.strip_prefix(".minnctapersm ") {
            minnctapersm = v.trim().parse().ok();
        }
    }
    Some((maxntid?, minnctapersm?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
.version 8.0
.target sm_90a
.address_size 64

.visible .entry k1(
\t.param .align 8 .b8 k1_param_0[24]
)
{
\tret;
}
.visible .entry k2()
{
\tret;
}
";

    const K: &[KernelSpec] = &[
        KernelSpec {
            entry: "k1",
            max_threads_per_block: 384,
            min_blocks_per_sm: 1,
        },
        KernelSpec {
            entry: "k2",
            max_threads_per_block: 128,
            min_blocks_per_sm: 2,
        },
    ];

    #[test]
    fn patch_then_check_passes() {
        let patched = patch_launch_bounds(SAMPLE, K).unwrap();
        assert_eq!(launch_bounds_of(&patched, "k1"), Some((384, 1)));
        assert_eq!(launch_bounds_of(&patched, "k2"), Some((128, 2)));
        check_module(&patched, K).unwrap();
    }

    #[test]
    fn function_text_spans_one_entry() {
        let k1 = function_text(SAMPLE, "k1").unwrap();
        assert!(
            k1.starts_with(".visible .entry k1(") && !k1.contains("k2"),
            "{k1}"
        );
        let k2 = function_text(SAMPLE, "k2").unwrap();
        assert!(
            k2.starts_with(".visible .entry k2()") && k2.ends_with("}\n"),
            "{k2}"
        );
        assert!(function_text(SAMPLE, "k3").is_none());
    }

    #[test]
    fn unpatched_module_fails_check() {
        let err = check_module(SAMPLE, K).unwrap_err().to_string();
        assert!(err.contains("`k1` lacks its launch bounds"), "{err}");
    }

    #[test]
    fn extern_func_is_reported_by_name() {
        let ptx = SAMPLE.replace(
            ".address_size 64\n",
            ".address_size 64\n.extern .func (.param .b32 r) _ZN4core9panicking5panic(\n",
        );
        assert_eq!(unresolved_calls(&ptx), vec!["_ZN4core9panicking5panic"]);
        let patched = patch_launch_bounds(&ptx, K).unwrap();
        let err = check_module(&patched, K).unwrap_err().to_string();
        assert!(
            err.contains("unresolved call to `_ZN4core9panicking5panic`"),
            "{err}"
        );
    }

    #[test]
    fn outlined_function_is_reported() {
        let ptx = SAMPLE.replace(
            ".visible .entry k2()",
            ".func (.param .b32 r) helper(\n)\n{\n}\n.visible .entry k2()",
        );
        assert_eq!(outlined_functions(&ptx), vec!["helper"]);
        let patched = patch_launch_bounds(&ptx, K).unwrap();
        let err = check_module(&patched, K).unwrap_err().to_string();
        assert!(err.contains("`helper` was not inlined"), "{err}");
    }

    #[test]
    fn wrong_target_and_unknown_entry_are_reported() {
        let ptx = SAMPLE.replace("sm_90a", "sm_80");
        let patched = patch_launch_bounds(&ptx, &K[..1]).unwrap();
        let err = check_module(&patched, &K[..1]).unwrap_err().to_string();
        assert!(err.contains("wrong GPU"), "{err}");
        assert!(err.contains("`k2` is not in the kernel table"), "{err}");
    }
}

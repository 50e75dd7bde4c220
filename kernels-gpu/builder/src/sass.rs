//! SASS instruction histograms from cuobjdump.

use crate::BuildError;
use crate::tools::{self, Tool};
use std::env;
use std::path::Path;
use std::process::Command;

/// One SASS instruction: its address, its base opcode (`HGMMA` for
/// `HGMMA.64x64x16.F32.BF16`), and where it branches to, for a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub address: u32,
    pub opcode: String,
    pub target: Option<u32>,
}

/// The SASS of one function: its instructions in order.
#[derive(Debug, Clone, Default)]
pub struct FunctionSass {
    pub name: String,
    /// Highest general register (`R<n>`) the code touches. Above the
    /// entry's register cap it proves `setmaxnreg` raised the limit.
    pub max_register: u32,
    pub instructions: Vec<Instruction>,
}

impl FunctionSass {
    /// How many instructions have one of these base opcodes
    /// (`HGMMA.64x64x16.F32.BF16` counts as `HGMMA`).
    pub fn count(&self, opcodes: &[&str]) -> u32 {
        self.instructions
            .iter()
            .filter(|i| opcodes.contains(&i.opcode.as_str()))
            .count() as u32
    }

    /// All instructions of the function.
    pub fn total(&self) -> u32 {
        self.instructions.len() as u32
    }
}

/// The opcode classes kernel developers look at, as (column, opcodes).
pub const CLASSES: &[(&str, &[&str])] = &[
    ("HGMMA", &["HGMMA"]),
    ("QGMMA", &["QGMMA"]),
    ("HMMA", &["HMMA"]),
    ("LDL/STL", &["LDL", "STL"]),
    ("BAR", &["BAR"]),
    ("SYNCS", &["SYNCS"]),
    ("UTMALDG", &["UTMALDG"]),
    ("UTMASTG", &["UTMASTG"]),
    // Bulk (non-tensor) copies and reduce-adds: the backward's row
    // statistics and its dQ reductions.
    ("UBLKCP", &["UBLKCP"]),
    ("UBLKRED", &["UBLKRED"]),
    // Global reductions from registers: dQ added in fragment order, the
    // deterministic order's semaphores.
    ("REDG", &["REDG"]),
    ("MUFU", &["MUFU"]),
    ("USETMAXREG", &["USETMAXREG"]),
];

/// Runs `cuobjdump -sass` on `cubin` and splits the listing per function.
pub fn disassemble(cuobjdump: &Path, cubin: &Path) -> Result<Vec<FunctionSass>, BuildError> {
    let mut cmd = Command::new(cuobjdump);
    cmd.arg("-sass").arg(cubin);
    // cuobjdump runs nvdisasm, which it looks for on PATH.
    if let Some(nvdisasm) = tools::find(Tool::Nvdisasm)
        && let Some(dir) = nvdisasm.parent()
    {
        let mut path = vec![dir.to_path_buf()];
        path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
        if let Ok(joined) = env::join_paths(path) {
            cmd.env("PATH", joined);
        }
    }
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        tool: cuobjdump.display().to_string(),
        source,
    })?;
    if !out.status.success() {
        let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(BuildError::Cuobjdump { log });
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses a `cuobjdump -sass` listing.
pub fn parse(listing: &str) -> Vec<FunctionSass> {
    let mut functions: Vec<FunctionSass> = Vec::new();
    for line in listing.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("Function : ") {
            functions.push(FunctionSass {
                name: name.trim().to_string(),
                ..FunctionSass::default()
            });
        } else if let (Some(f), Some((address, op, operands))) =
            (functions.last_mut(), instruction(trimmed))
        {
            f.max_register = f.max_register.max(max_register(trimmed));
            f.instructions.push(Instruction {
                address,
                opcode: op.to_string(),
                target: branch_target(op, operands),
            });
        }
    }
    functions
}

// The highest `R<n>` operand of an instruction line (0 if none). `UR`, `SR_`
// and `RZ` are other register files or constants.
fn max_register(line: &str) -> u32 {
    let code = line
        .split("/*")
        .nth(1)
        .and_then(|l| l.split_once("*/"))
        .map_or("", |(_, rest)| rest);
    code.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|token| token.strip_prefix('R')?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

// `/*0040*/  @!P0 IMAD R0, R0, UR4, R3 ;  /* 0x... */` -> (0x40, `IMAD`,
// `R0, R0, UR4, R3 ;`)
fn instruction(line: &str) -> Option<(u32, &str, &str)> {
    let rest = line.strip_prefix("/*")?;
    let (address, rest) = rest.split_once("*/")?;
    let address = u32::from_str_radix(address, 16).ok()?;
    let code = rest.split("/*").next().unwrap_or(rest).trim();
    let code = match code.strip_prefix('@') {
        Some(predicated) => predicated.split_once(char::is_whitespace)?.1.trim_start(),
        None => code,
    };
    let (op, operands) = code.split_once(char::is_whitespace).unwrap_or((code, ""));
    let op = op.trim_end_matches(';');
    let base = op.split('.').next()?;
    (!base.is_empty()).then_some((address, base, operands))
}

/// The branch target of an instruction's operands (`BRA 0x6b60`, `@!P0 BRA
/// P3, 0x6b60`), for `BRA` only.
pub(crate) fn branch_target(opcode: &str, operands: &str) -> Option<u32> {
    if opcode != "BRA" {
        return None;
    }
    let hex = operands
        .split(|c: char| c == ',' || c.is_whitespace() || c == ';')
        .filter_map(|t| t.strip_prefix("0x"))
        .next_back()?;
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "
\tcode for sm_90a
\t\tFunction : fa3_k
\t.headerflags\t@\"EF_CUDA_ACCELERATORS EF_CUDA_SM90\"
        /*0000*/                   LDC R1, c[0x0][0x28] ;          /* 0x00000a00ff017b82 */
                                                                   /* 0x000fe20000000800 */
        /*0010*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], RZ ;  /* 0x0 */
        /*0020*/              @!P0 EXIT ;                          /* 0x000000000000894d */
        /*0030*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;   /* 0x0 */
        /*0040*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], R231 ;  /* 0x0 */
\t\tFunction : fa3_j
        /*0000*/                   EXIT ;                          /* 0x0 */
";

    #[test]
    fn counts_base_opcodes_per_function() {
        let f = parse(LISTING);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "fa3_k");
        assert_eq!(f[0].count(&["HGMMA"]), 2);
        assert_eq!(f[0].count(&["EXIT", "BAR"]), 2);
        assert_eq!(f[0].total(), 5);
        assert_eq!(f[1].count(&["EXIT"]), 1);
        assert_eq!(f[0].max_register, 231, "UR/RZ/SR are not general registers");
        assert_eq!(f[1].max_register, 0);
    }

    #[test]
    fn branch_targets_are_the_last_hex_operand() {
        assert_eq!(branch_target("BRA", "0x6b60 ;"), Some(0x6b60));
        assert_eq!(branch_target("BRA", "P3, 0x6b60 ;"), Some(0x6b60));
        assert_eq!(branch_target("BRA", "`(.L_x_1) ;"), None);
        assert_eq!(branch_target("IMAD", "R0, R1, 0x10, R2 ;"), None);
    }
}

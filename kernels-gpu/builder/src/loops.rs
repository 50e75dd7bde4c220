//! The main loops of a kernel's SASS: the innermost loops that issue wgmma,
//! with what one trip through each issues. Comparing these counts with
//! another build's (or with FA3's cubin, `cargo xtask inspect --loops
//! --cubin`) shows where the scalar work between the GEMMs differs.

use crate::sass::{FunctionSass, Instruction};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one trip through a loop issues, per thread.
#[derive(Debug, Clone, Serialize)]
pub struct LoopBody {
    /// First and last instruction address (the backward branch).
    pub start: u32,
    pub end: u32,
    /// Instructions per class of [`LOOP_CLASSES`], every one counted once
    /// whatever branch skips it (a masked path included).
    pub classes: BTreeMap<String, u32>,
    /// Instructions in the body, NOPs left out.
    pub instructions: u32,
}

/// The classes a loop is described by, as (column, opcodes); `U*` counts
/// the uniform-datapath instructions not named elsewhere; `GMMA` the
/// 16-bit (`HGMMA`) and FP8 (`QGMMA`) wgmma alike.
pub const LOOP_CLASSES: &[(&str, &[&str])] = &[
    ("GMMA", &["HGMMA", "QGMMA"]),
    ("MUFU", &["MUFU"]),
    ("FFMA", &["FFMA"]),
    ("FMUL", &["FMUL"]),
    ("FADD", &["FADD"]),
    ("FMNMX", &["FMNMX"]),
    ("FSEL", &["FSEL"]),
    ("F2FP", &["F2FP"]),
    ("ISETP", &["ISETP", "PLOP3"]),
    ("LOP3", &["LOP3"]),
    (
        "int",
        &["IMAD", "IADD3", "LEA", "SHF", "MOV", "SEL", "CS2R", "S2R"],
    ),
    ("U*", &[]),
    ("LDS", &["LDS"]),
    ("STS", &["STS"]),
    ("LDSM/STSM", &["LDSM", "STSM"]),
    ("SHFL", &["SHFL"]),
    ("BAR", &["BAR"]),
    ("SYNCS", &["SYNCS"]),
    ("WARPGROUP", &["WARPGROUP"]),
    ("RED", &["REDG", "RED", "UBLKRED"]),
    ("BRA", &["BRA"]),
];

/// The class column of `opcode`, if any.
fn class_of(opcode: &str) -> Option<&'static str> {
    LOOP_CLASSES
        .iter()
        .find(|(_, ops)| ops.contains(&opcode))
        .map(|(class, _)| *class)
        .or_else(|| opcode.starts_with('U').then_some("U*"))
}

/// The innermost loops of `f` that contain a wgmma (`HGMMA`, `QGMMA`): a backward branch
/// closes each loop (its body taken as the address range it spans), and of
/// two such ranges that overlap only the shorter is kept: that drops the
/// persistent tile loop around a main loop, and a range whose latch ptxas
/// placed far below the loop. Spin loops on an mbarrier have no HGMMA and
/// do not count.
pub fn wgmma_loops(f: &FunctionSass) -> Vec<LoopBody> {
    let code = &f.instructions;
    let with_hgmma = |start: u32, end: u32| {
        code.iter()
            .any(|i| i.opcode.ends_with("GMMA") && (start..=end).contains(&i.address))
    };
    let mut ranges: Vec<(u32, u32)> = code
        .iter()
        .filter_map(|i| Some((i.target?, i.address)))
        .filter(|&(target, at)| target <= at && with_hgmma(target, at))
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    let overlap = |(s, e): (u32, u32), (s2, e2): (u32, u32)| s <= e2 && s2 <= e;
    let innermost: Vec<(u32, u32)> = ranges
        .iter()
        .copied()
        .filter(|&r| {
            !ranges
                .iter()
                .any(|&r2| r2 != r && overlap(r, r2) && (r2.1 - r2.0, r2) < (r.1 - r.0, r))
        })
        .collect();
    innermost
        .into_iter()
        .map(|(start, end)| {
            let body: Vec<&Instruction> = code
                .iter()
                .filter(|i| (start..=end).contains(&i.address) && i.opcode != "NOP")
                .collect();
            let mut classes: BTreeMap<String, u32> = LOOP_CLASSES
                .iter()
                .map(|(class, _)| (class.to_string(), 0))
                .collect();
            for i in &body {
                if let Some(class) = class_of(&i.opcode) {
                    *classes.entry(class.to_string()).or_default() += 1;
                }
            }
            LoopBody {
                start,
                end,
                classes,
                instructions: body.len() as u32,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sass::parse;

    const LISTING: &str = "
\t\tFunction : fa3_k
        /*0000*/                   S2R R0, SR_TID.X ;              /* 0x0 */
        /*0010*/                   SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4], R0 ;  /* 0x0 */
        /*0020*/              @!P0 BRA 0x10 ;                      /* 0x0 */
        /*0030*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], RZ ;  /* 0x0 */
        /*0040*/                   MUFU.EX2 R24, R24 ;             /* 0x0 */
        /*0050*/                   UIADD3 UR4, UR4, 0x1, URZ ;     /* 0x0 */
        /*0060*/                   NOP ;                           /* 0x0 */
        /*0070*/               @P1 BRA P2, 0x30 ;                  /* 0x0 */
        /*0080*/               @P3 BRA 0x0 ;                       /* 0x0 */
        /*0090*/                   EXIT ;                          /* 0x0 */
        /*00a0*/                   BRA 0x40 ;                      /* 0x0 */
";

    #[test]
    fn the_innermost_wgmma_loop_and_its_classes() {
        let f = &parse(LISTING)[0];
        let loops = wgmma_loops(f);
        // 0x10..0x20 is a spin loop (no HGMMA); 0x00..0x80 holds the main
        // loop and 0x40..0xa0 overlaps it, both longer; 0x30..0x70 is the
        // one reported.
        assert_eq!(loops.len(), 1, "{loops:?}");
        let l = &loops[0];
        assert_eq!((l.start, l.end), (0x30, 0x70));
        assert_eq!(l.instructions, 4, "the NOP is left out");
        assert_eq!(l.classes["GMMA"], 1);
        assert_eq!(l.classes["MUFU"], 1);
        assert_eq!(l.classes["U*"], 1);
        assert_eq!(l.classes["BRA"], 1);
        assert_eq!(l.classes["SYNCS"], 0);
    }
}

"""Property: whatever the files say, loading a tree gives problems, never an exception."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.spec_index.compile import compile_spec_tree

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "online-boutique" / "specs"
SAMPLES = {
    p.relative_to(EXAMPLE).as_posix(): p.read_text()
    for p in sorted(EXAMPLE.rglob("*"))
    if p.is_file() and p.suffix in {".md", ".sea", ".yaml", ".json"}
}
NAMES = ["adr/900-x.md", "prd/900-x.md", "sds/900-x.md", "sea/x.sea", "m/x.manifest.yaml",
         "m/x.manifest.json", "sds/x.sds.yaml", "notes/x.md"]  # fmt: skip

# Text that looks like spec syntax, so the generator reaches deep into the parsers.
TOKENS = st.sampled_from([
    "---\n", "id: ", "ADR-001", "# ADR-002: t\n", "**Status**: ", "**Satisfies**: PRD-9\n",
    "| REQ-101 | x |\n", "Flow \"F\"\n", "@context \"c\"\n", "  @budget ", "{", "}", "[", "]",
    "\"p95_ms\": ", "-1", "1e309", "  @runtime {\"service\": \"s\", \"span_name\": \"x\"}\n",
    "Policy p per Constraint Obligation priority x\n", "as: ", "behavior:\n", "  operations:\n",
    "    - flow: F\n", "      calls: [a:flow:B]\n", "context: {name: c}\n", ": ", "\t", "&a ",
    "*a", "<<: ", "\"", "'", "\\", "\n", "\x00", "\ufeff", "é", "supersedes: [ADR-001]\n",
])  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(TOKENS, max_size=60).map("".join),
    st.sampled_from(sorted(SAMPLES.values())).flatmap(
        lambda s: st.integers(0, len(s)).map(lambda n: s[:n])
    ),
)


def check_tree(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(text.encode("utf-8", errors="surrogatepass"))
        compiled = compile_spec_tree(root)
        line_counts = {rel: text.count("\n") + 2 for rel, text in files.items()}
        for problem in compiled.problems:
            assert problem.path in files, problem
            assert 1 <= problem.line <= line_counts[problem.path], problem
            assert "\n" not in str(problem)
        assert compiled.ok == (compiled.index is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NAMES), TEXT, min_size=1, max_size=5))
def test_random_trees_never_raise(files: dict[str, str]) -> None:
    check_tree(files)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_truncated_example_file_inside_the_real_tree(rel: str, data: st.DataObject) -> None:
    text = SAMPLES[rel]
    cut = data.draw(st.integers(0, len(text)))
    files = dict(SAMPLES)
    files[rel] = text[:cut]
    check_tree(files)


def test_random_bytes_are_reported_not_raised() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "adr").mkdir()
        (root / "adr" / "001-x.md").write_bytes(b"# ADR-001: t\n\xff\xfe bad bytes\n")
        compiled = compile_spec_tree(root)
        assert [str(p) for p in compiled.problems] == [
            "adr/001-x.md:2: not valid UTF-8 (byte 0xff); undecodable bytes were replaced"
        ]

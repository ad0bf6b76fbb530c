"""The README's "A short example" runs as printed: each expression followed by commented output gives those numbers."""

import ast
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def short_example() -> str:
    """The ```python block under the '## A short example' heading of README.md."""
    section = README.read_text(encoding="utf-8").split("## A short example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md: no ```python block under '## A short example'"
    return match.group(1)


def printed_array(comment_lines: list[str]) -> np.ndarray:
    """A NumPy repr written as comments (``# [[0.75 1.  ]]``) back to an array."""
    text = " ".join(line.lstrip("# ").rstrip() for line in comment_lines)
    text = re.sub(r"(?<=[\d.\]])\s+(?=[-\d\[])", ", ", text.replace("[ ", "["))
    return np.array(ast.literal_eval(text), dtype=float)


def test_short_example_prints_the_numbers_in_the_readme() -> None:
    source = short_example()
    lines = source.splitlines()
    namespace: dict = {}
    checked = 0
    for node in ast.parse(source).body:
        code = ast.get_source_segment(source, node)
        if not isinstance(node, ast.Expr):
            exec(compile(code, str(README), "exec"), namespace)
            continue
        value = eval(compile(code, str(README), "eval"), namespace)
        output = []
        for line in lines[node.end_lineno :]:  # the comment lines right below the expression: its printed value
            if not re.match(r"\s*#\s*\[", line) and not (output and line.lstrip().startswith("#")):
                break
            output.append(line.strip())
        if output:
            expected = printed_array(output)
            assert np.shape(value) == expected.shape, f"{code}: shape {np.shape(value)}, README {expected.shape}"
            # one unit in the last printed digit: the README shows the values rounded to 3 decimals
            np.testing.assert_allclose(np.asarray(value, dtype=float), expected, rtol=0, atol=1e-3, err_msg=code)
            checked += 1
    assert checked >= 1, "README short example: no expression with commented output to check"

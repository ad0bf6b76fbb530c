"""Result tables (CSV → Markdown) and the README blocks that show them."""

import numpy as np
import pandas as pd
import pytest

from nanoutils import profiles, report


def test_markdown_formats_numbers_and_keeps_text():
    frame = pd.DataFrame(
        {
            "model": ["a", "b"],
            "error (pp)": [3.4224, np.nan],
            "time (s)": [1234.5, 12.0],
            "parameters": ["56,460", "d + 4 = 14"],
        }
    )
    lines = report.markdown(frame).splitlines()
    assert lines[0] == "| model | error (pp) | time (s) | parameters |"
    assert lines[2] == "| a | 3.42 | 1234 | 56,460 |"
    assert lines[3] == "| b |  | 12 | d + 4 = 14 |"


def test_write_table_renders_markdown_from_the_written_csv(tmp_path):
    frame = pd.DataFrame(
        {"x": [1.23456789, -2.0e-5], "note": ["", "at bound (0.1)"]}, index=pd.Index(["r_p", "X_d"], name="parameter")
    )
    csv, md = report.write_table(frame, tmp_path, "t", title="**T**")
    back = report.read_table(csv)
    assert list(back.columns) == ["parameter", "x", "note"]
    assert back["x"].tolist() == ["1.23457", "-2e-05"]  # 6 significant digits in the CSV
    assert md.read_text() == "**T**\n\n" + report.markdown(back)
    assert "| r_p | 1.23 |  |" in md.read_text() and "| X_d | -2e-05 | at bound (0.1) |" in md.read_text()


def test_sync_readme_copies_files_into_marked_blocks(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table: figures/t.md -->\nold\n<!-- end table -->\nend\n")
    assert report.sync_readme(readme, tmp_path) == ["figures/t.md"]
    assert report.readme_tables(readme.read_text()) == {"figures/t.md": "| a |\n|---|\n| 1 |\n"}
    assert report.sync_readme(readme, tmp_path) == []  # idempotent
    readme.write_text("<!-- table: figures/missing.md -->\n<!-- end table -->\n")
    with pytest.raises(FileNotFoundError, match="figures/missing.md"):
        report.sync_readme(readme, tmp_path)


def test_readme_tables_match_the_committed_figures_csv():
    """The README shows exactly the tables in figures/, and each Markdown table is its CSV's rendering."""
    blocks = report.readme_tables()
    assert {"figures/table1.md", "figures/table2.md", "figures/ablations.md"} <= set(blocks)
    for rel, body in blocks.items():
        md = profiles.ROOT / rel
        assert body == md.read_text(), f"README block {rel} differs from the file: run notebook 07 (report.sync_readme)"
        table = body.split("\n\n")[-1]  # after the title line, when there is one
        assert table == report.markdown(report.read_table(md.with_suffix(".csv"))), f"{rel} is not its CSV's rendering"

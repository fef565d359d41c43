"""Stock updates from outside: the CLI (CSV or one line) is all-or-nothing."""
from bot.ops.cli import main
from tests.harness import stock_quantity


def test_cli_sets_one_line(shop, shop_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", shop_url)
    assert main(["stock", "set", "P000001-05", "LYS-PDI", "7"]) == 0
    assert stock_quantity(shop, "P000001-05", "LYS-PDI") == 7
    assert "1 stock lines updated" in capsys.readouterr().out


def test_csv_import_is_all_or_nothing(shop, shop_url, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", shop_url)
    good = tmp_path / "good.csv"
    good.write_text("sku,store,quantity\nP000001-05,LIL-CTR,9\nP000001-14,WEB,2\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,store,quantity\nP000001-05,LIL-CTR,1\nP999999-01,LIL-CTR,4\n")
    assert main(["stock", "import", str(good)]) == 0
    assert stock_quantity(shop, "P000001-05", "LIL-CTR") == 9
    assert main(["stock", "import", str(bad)]) == 1
    assert "article inconnu" in capsys.readouterr().err
    assert stock_quantity(shop, "P000001-05", "LIL-CTR") == 9  # first line rolled back

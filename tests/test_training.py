"""What the model is trained on: the hand-written project, never the shop's catalog."""
import yaml

from bot.core.settings import PROJECT_ROOT


def test_no_training_data_names_the_demo_catalog_wholesale():
    """No lookup table of product names or brands: a product is found from the words of
    the message at run time (bot.stock.catalog), whatever the model makes of it."""
    for path in (PROJECT_ROOT / "nlu_data").rglob("*.yml"):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            assert item.get("lookup") in (None, "city"), f"{path.name}: lookup {item.get('lookup')}"

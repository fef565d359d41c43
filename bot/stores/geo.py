"""Places: where the shopper is (city, postcode or shared location) and distances."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from rapidfuzz import fuzz, process

from bot.core.text import normalise

# French cities without a store, so "près de chez moi" works from them too.
# name, postcode, latitude, longitude
CITIES = [
    ("Villeurbanne", "69100", 45.7719, 4.8902), ("Saint-Étienne", "42000", 45.4397, 4.3872),
    ("Le Havre", "76600", 49.4944, 0.1079), ("Toulon", "83000", 43.1242, 5.9280),
    ("Perpignan", "66000", 42.6887, 2.8948), ("Limoges", "87000", 45.8336, 1.2611),
    ("Amiens", "80000", 49.8941, 2.2958), ("Besançon", "25000", 47.2378, 6.0241),
    ("Orléans", "45000", 47.9030, 1.9093), ("Mulhouse", "68100", 47.7508, 7.3359),
    ("Caen", "14000", 49.1829, -0.3707), ("Nancy", "54000", 48.6921, 6.1844),
    ("Avignon", "84000", 43.9493, 4.8055), ("Poitiers", "86000", 46.5802, 0.3404),
    ("La Rochelle", "17000", 46.1603, -1.1511), ("Pau", "64000", 43.2951, -0.3708),
    ("Bayonne", "64100", 43.4929, -1.4748), ("Quimper", "29000", 47.9960, -4.1024),
    ("Lorient", "56100", 47.7483, -3.3700), ("Vannes", "56000", 47.6582, -2.7608),
    ("Saint-Malo", "35400", 48.6493, -2.0257), ("Chambéry", "73000", 45.5646, 5.9178),
    ("Valence", "26000", 44.9334, 4.8924), ("Nîmes", "30000", 43.8367, 4.3601),
    ("Béziers", "34500", 43.3442, 3.2158), ("Cannes", "06400", 43.5528, 7.0174),
    ("Antibes", "06600", 43.5808, 7.1251), ("Ajaccio", "20000", 41.9192, 8.7386),
    ("Calais", "62100", 50.9513, 1.8587), ("Dunkerque", "59140", 51.0343, 2.3768),
    ("Roubaix", "59100", 50.6942, 3.1746), ("Versailles", "78000", 48.8049, 2.1204),
    ("Boulogne-Billancourt", "92100", 48.8397, 2.2399), ("Saint-Denis", "93200", 48.9362, 2.3574),
    ("Montreuil", "93100", 48.8638, 2.4485), ("Nanterre", "92000", 48.8924, 2.2071),
    ("Créteil", "94000", 48.7904, 2.4556), ("Colmar", "68000", 48.0794, 7.3585),
    ("Troyes", "10000", 48.2973, 4.0744), ("Le Mans", "72000", 48.0061, 0.1996),
    ("Niort", "79000", 46.3237, -0.4588), ("Angoulême", "16000", 45.6484, 0.1562),
    ("Cherbourg", "50100", 49.6337, -1.6221), ("Laval", "53000", 48.0707, -0.7734),
    ("Saint-Nazaire", "44600", 47.2735, -2.2138), ("Vienne", "38200", 45.5256, 4.8744),
    ("Bourg-en-Bresse", "01000", 46.2052, 5.2255), ("Chartres", "28000", 48.4439, 1.4890),
    ("Arras", "62000", 50.2910, 2.7775), ("Valenciennes", "59300", 50.3570, 3.5235),
    ("Nantes", "44000", 47.2184, -1.5536), ("Cergy", "95000", 49.0364, 2.0761),
]

POSTCODE_RE = re.compile(r"\b(\d{5})\b")
EARTH_KM = 6371.0


@dataclass(frozen=True)
class Place:
    label: str
    latitude: float
    longitude: float


def distance_km(a: Tuple[float, float], b: Tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(h))


class Gazetteer:
    """Cities and postcodes known to the shop: store cities plus CITIES."""

    def __init__(self, store_places: Iterable[Tuple[str, str, float, float]]) -> None:
        self.cities = {}
        self.postcodes = {}
        for name, postcode, lat, lon in list(store_places) + CITIES:
            self.cities.setdefault(normalise(name), Place(name, lat, lon))
            self.postcodes.setdefault(postcode, Place(name, lat, lon))
        self._names = list(self.cities)

    def from_postcode(self, postcode: str) -> Optional[Place]:
        if postcode in self.postcodes:
            return self.postcodes[postcode]
        same_department = [p for code, p in self.postcodes.items() if code[:2] == postcode[:2]]
        if not same_department:
            return None
        lat = sum(p.latitude for p in same_department) / len(same_department)
        lon = sum(p.longitude for p in same_department) / len(same_department)
        return Place(postcode, lat, lon)

    def from_city(self, city: str) -> Optional[Place]:
        key = normalise(city)
        if not key:
            return None
        if key in self.cities:
            return self.cities[key]
        found = process.extractOne(key, self._names, scorer=fuzz.ratio, score_cutoff=85)
        return self.cities[found[0]] if found else None

    def find_in_text(self, text: str) -> Optional[Place]:
        """A postcode or a known city named anywhere in a message."""
        postcode = POSTCODE_RE.search(text)
        if postcode:
            place = self.from_postcode(postcode.group(1))
            if place:
                return place
        plain = f" {normalise(text)} "
        for key in sorted(self.cities, key=len, reverse=True):
            if f" {key} " in plain:
                return self.cities[key]
        return None

    def known_city_words(self) -> List[str]:
        return self._names


def place_from_metadata(metadata: Optional[dict]) -> Optional[Place]:
    """A location shared on Telegram arrives as metadata {"location": {lat, lon}}."""
    location = (metadata or {}).get("location")
    if not isinstance(location, dict):
        return None
    try:
        lat, lon = float(location["latitude"]), float(location["longitude"])
    except (KeyError, TypeError, ValueError, OverflowError):  # 10**400 has no float
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Place("votre position", lat, lon)

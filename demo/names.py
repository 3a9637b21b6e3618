"""Synthetic names for the demo's students: drawn deterministically from short lists shipped here.

The UCI records carry no names; these are invented, and the demo's notice says so on every page.
A name is a function of the institution and the student's row alone, so every build gives the
same student the same name.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata

PORTUGUESE_FEMALE = (
    "Ana", "Beatriz", "Carolina", "Catarina", "Daniela", "Diana", "Filipa", "Francisca", "Inês", "Joana",
    "Juliana", "Lara", "Leonor", "Luana", "Madalena", "Mafalda", "Margarida", "Maria", "Mariana", "Marta",
    "Matilde", "Patrícia", "Raquel", "Rita", "Sara", "Sofia", "Teresa", "Vitória",
)
PORTUGUESE_MALE = (
    "Afonso", "André", "António", "Bernardo", "Bruno", "Carlos", "Daniel", "David", "Diogo", "Duarte",
    "Francisco", "Gabriel", "Gonçalo", "Guilherme", "Henrique", "João", "José", "Lucas", "Luís", "Manuel",
    "Martim", "Miguel", "Nuno", "Pedro", "Rafael", "Ricardo", "Rodrigo", "Tiago", "Tomás", "Vasco",
)
PORTUGUESE_SURNAMES = (
    "Almeida", "Alves", "Antunes", "Barbosa", "Batista", "Cardoso", "Carvalho", "Correia", "Costa", "Cruz",
    "Dias", "Duarte", "Faria", "Fernandes", "Ferreira", "Fonseca", "Gomes", "Gonçalves", "Henriques", "Lopes",
    "Machado", "Marques", "Martins", "Matos", "Melo", "Mendes", "Monteiro", "Moreira", "Neves", "Nunes",
    "Oliveira", "Pereira", "Pinto", "Ramos", "Reis", "Ribeiro", "Rocha", "Rodrigues", "Santos", "Silva",
    "Soares", "Sousa", "Tavares", "Teixeira", "Vieira",
)
ENGLISH_FEMALE = (
    "Abigail", "Amelia", "Ava", "Chloe", "Eleanor", "Ella", "Emily", "Freya", "Grace", "Hannah", "Isla",
    "Ivy", "Lily", "Lucy", "Maya", "Mia", "Olivia", "Phoebe", "Poppy", "Rosie", "Ruby", "Sophie", "Zara",
)
ENGLISH_MALE = (
    "Adam", "Alfie", "Archie", "Arthur", "Ben", "Charlie", "Daniel", "Ethan", "Finley", "George", "Harry",
    "Henry", "Isaac", "Jack", "Jacob", "Leo", "Louis", "Max", "Noah", "Oliver", "Oscar", "Samuel", "Theo",
)
ENGLISH_SURNAMES = (
    "Bailey", "Baker", "Bennett", "Brown", "Campbell", "Carter", "Clarke", "Cooper", "Davies", "Edwards",
    "Evans", "Green", "Hall", "Harris", "Hughes", "Jackson", "Johnson", "Jones", "King", "Lewis", "Martin",
    "Morgan", "Morris", "Murphy", "Patel", "Price", "Roberts", "Robinson", "Shaw", "Smith", "Taylor", "Thomas",
    "Turner", "Walker", "Ward", "Watson", "White", "Williams", "Wilson", "Wood", "Wright", "Young",
)
NAME_LISTS = {
    "pt": (PORTUGUESE_FEMALE, PORTUGUESE_MALE, PORTUGUESE_SURNAMES, 2),
    "en": (ENGLISH_FEMALE, ENGLISH_MALE, ENGLISH_SURNAMES, 1),
}


def seeded_random(*parts: object) -> random.Random:
    """A random generator fixed by ``parts`` (not by Python's per-process string hashing)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def synthetic_name(*, language: str, seed: str, female: bool) -> str:
    """A first name matching the record's gender and one or two surnames (Portuguese custom)."""
    female_names, male_names, surnames, surname_count = NAME_LISTS[language]
    rng = seeded_random("name", seed)
    first = rng.choice(female_names if female else male_names)
    return " ".join([first, *rng.sample(surnames, surname_count)])


def synthetic_email(*, name: str, number: int, domain: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    parts = ascii_name.split()
    return f"{parts[0]}.{parts[-1]}.{number:05d}@{domain}"

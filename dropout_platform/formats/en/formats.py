"""English pages keep the unambiguous ISO short dates they always showed (2026-12-03,
2026-12-03 14:05), which Django would write the American way (12/03/2026); the long formats are
Django's ("Dec. 3, 2026"). Spanish and Portuguese pages use Django's own formats for their
language (03/12/2026 14:05, "3 de diciembre de 2026 a las 14:05")."""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"

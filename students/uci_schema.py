"""The UCI dropout data set's columns as an institution's feature schema.

Used by the demo institution and offered as the suggested mapping when an administrator uploads
a file with the UCI headers. Code tables follow Realinho et al. (2022) and the UCI page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COURSES = {
    "33": "Biofuel Production Technologies", "171": "Animation and Multimedia Design",
    "8014": "Social Service (evening)", "9003": "Agronomy", "9070": "Communication Design",
    "9085": "Veterinary Nursing", "9119": "Informatics Engineering", "9130": "Equiniculture",
    "9147": "Management", "9238": "Social Service", "9254": "Tourism", "9500": "Nursing",
    "9556": "Oral Hygiene", "9670": "Advertising and Marketing Management",
    "9773": "Journalism and Communication", "9853": "Basic Education", "9991": "Management (evening)",
}
MARITAL_STATUS = {"1": "Single", "2": "Married", "3": "Widowed", "4": "Divorced", "5": "Facto union",
                  "6": "Legally separated"}
NATIONALITY = {
    "1": "Portuguese", "2": "German", "6": "Spanish", "11": "Italian", "13": "Dutch", "14": "English",
    "17": "Lithuanian", "21": "Angolan", "22": "Cape Verdean", "24": "Guinean", "25": "Mozambican",
    "26": "Santomean", "32": "Turkish", "41": "Brazilian", "62": "Romanian", "100": "Moldovan",
    "101": "Mexican", "103": "Ukrainian", "105": "Russian", "108": "Cuban", "109": "Colombian",
}
APPLICATION_MODE = {
    "1": "1st phase, general contingent", "2": "Ordinance 612/93", "5": "1st phase, special contingent (Azores)",
    "7": "Holder of another higher course", "10": "Ordinance 854-B/99", "15": "International student (bachelor)",
    "16": "1st phase, special contingent (Madeira)", "17": "2nd phase, general contingent",
    "18": "3rd phase, general contingent", "26": "Ordinance 533-A/99 b2 (different plan)",
    "27": "Ordinance 533-A/99 b3 (other institution)", "39": "Over 23 years old", "42": "Transfer",
    "43": "Change of course", "44": "Technological specialisation diploma holder",
    "51": "Change of institution/course", "53": "Short cycle diploma holder",
    "57": "Change of institution/course (international)",
}
QUALIFICATION = {
    "1": "Secondary education (12th year)", "2": "Bachelor's degree", "3": "Degree", "4": "Master's",
    "5": "Doctorate", "6": "Frequency of higher education", "9": "12th year, not completed",
    "10": "11th year, not completed", "11": "7th year (old)", "12": "Other, 11th year",
    "13": "2nd year complementary high school", "14": "10th year", "15": "10th year, not completed",
    "18": "General commerce course", "19": "Basic education 3rd cycle (9th-11th year)",
    "20": "Complementary high school course", "22": "Technical-professional course",
    "25": "Complementary high school, not concluded", "26": "7th year", "27": "2nd cycle general high school",
    "29": "9th year, not completed", "30": "8th year", "31": "General course of administration and commerce",
    "33": "Supplementary accounting and administration", "34": "Unknown", "35": "Cannot read or write",
    "36": "Can read without 4th year", "37": "Basic education 1st cycle (4th/5th year)",
    "38": "Basic education 2nd cycle (6th-8th year)", "39": "Technological specialisation course",
    "40": "Higher education degree (1st cycle)", "41": "Specialised higher studies course",
    "42": "Professional higher technical course", "43": "Higher education master (2nd cycle)",
    "44": "Higher education doctorate (3rd cycle)",
}
OCCUPATION = {
    "0": "Student", "1": "Legislative/executive power, directors", "2": "Intellectual and scientific specialist",
    "3": "Intermediate-level technician", "4": "Administrative staff", "5": "Personal services, security, sales",
    "6": "Farmer or skilled agricultural worker", "7": "Skilled industry or construction worker",
    "8": "Machine operator or assembly worker", "9": "Unskilled worker", "10": "Armed forces",
    "90": "Other situation", "99": "(blank)",
}
GENDER = {"0": "Female", "1": "Male"}


@dataclass(frozen=True)
class UciColumn:
    header: str
    key: str
    label: str
    kind: str
    min_value: float | None = None
    max_value: float | None = None
    code_labels: dict[str, str] = field(default_factory=dict)
    protected: bool = False
    actionable: bool = False
    unit: str = ""
    # The stage (students.stages.DEFAULT_STAGES) from which the value is known: what the student
    # told us when applying, what enrolment records, and each semester's results at its end.
    known_from: str = "application"


def _units(sem: str, ordinal: str, *, registered: str, results: str) -> list[UciColumn]:
    """A semester's units: credited and enrolled are known once the student registers for it
    (``registered``); evaluations, approvals and the grade only at its end (``results``)."""
    prefix = f"Curricular units {sem} sem"
    return [
        UciColumn(f"{prefix} (credited)", f"units_{sem}_credited", f"{ordinal}-semester units credited",
                  "numeric", 0, 60, known_from=registered),
        UciColumn(f"{prefix} (enrolled)", f"units_{sem}_enrolled", f"{ordinal}-semester units enrolled",
                  "numeric", 0, 60, actionable=True, known_from=registered),
        UciColumn(f"{prefix} (evaluations)", f"units_{sem}_evaluations", f"{ordinal}-semester unit evaluations",
                  "numeric", 0, 100, actionable=True, known_from=results),
        UciColumn(f"{prefix} (approved)", f"units_{sem}_approved", f"{ordinal}-semester units approved",
                  "numeric", 0, 60, actionable=True, known_from=results),
        UciColumn(f"{prefix} (grade)", f"units_{sem}_grade", f"{ordinal}-semester average grade",
                  "numeric", 0, 20, actionable=True, unit="/ 20", known_from=results),
        UciColumn(f"{prefix} (without evaluations)", f"units_{sem}_without_evaluations",
                  f"{ordinal}-semester units without evaluations", "numeric", 0, 60, actionable=True,
                  known_from=results),
    ]


UCI_COLUMNS: list[UciColumn] = [
    UciColumn("Marital status", "marital_status", "Marital status", "categorical", code_labels=MARITAL_STATUS,
              protected=True),
    UciColumn("Application mode", "application_mode", "Application mode", "categorical",
              code_labels=APPLICATION_MODE),
    UciColumn("Application order", "application_order", "Application order (0 = first choice)", "numeric", 0, 9),
    UciColumn("Course", "course", "Course", "categorical", code_labels=COURSES),
    UciColumn("Daytime/evening attendance", "daytime_attendance", "Daytime attendance", "boolean"),
    UciColumn("Previous qualification", "previous_qualification", "Previous qualification", "categorical",
              code_labels=QUALIFICATION),
    UciColumn("Previous qualification (grade)", "previous_qualification_grade", "Previous qualification grade",
              "numeric", 0, 200, unit="/ 200"),
    UciColumn("Nacionality", "nationality", "Nationality", "categorical", code_labels=NATIONALITY, protected=True),
    UciColumn("Mother's qualification", "mother_qualification", "Mother's qualification", "categorical",
              code_labels=QUALIFICATION),
    UciColumn("Father's qualification", "father_qualification", "Father's qualification", "categorical",
              code_labels=QUALIFICATION),
    UciColumn("Mother's occupation", "mother_occupation", "Mother's occupation", "categorical",
              code_labels=OCCUPATION),
    UciColumn("Father's occupation", "father_occupation", "Father's occupation", "categorical",
              code_labels=OCCUPATION),
    UciColumn("Admission grade", "admission_grade", "Admission grade", "numeric", 0, 200, unit="/ 200"),
    UciColumn("Displaced", "displaced", "Lives away from home (displaced)", "boolean"),
    UciColumn("Educational special needs", "special_needs", "Educational special needs", "boolean"),
    UciColumn("Debtor", "debtor", "Owes the institution money (debtor)", "boolean", actionable=True,
              known_from="enrolment"),
    UciColumn("Tuition fees up to date", "tuition_up_to_date", "Tuition fees up to date", "boolean",
              actionable=True, known_from="enrolment"),
    UciColumn("Gender", "gender", "Gender", "categorical", code_labels=GENDER, protected=True),
    UciColumn("Scholarship holder", "scholarship_holder", "Scholarship holder", "boolean", actionable=True,
              known_from="enrolment"),
    UciColumn("Age at enrollment", "age_at_enrolment", "Age at enrolment", "numeric", 14, 100, protected=True,
              unit="years"),
    UciColumn("International", "international", "International student", "boolean", protected=True),
    *_units("1st", "First", registered="enrolment", results="end_of_term_1"),
    *_units("2nd", "Second", registered="end_of_term_1", results="end_of_term_2"),
    UciColumn("Unemployment rate", "unemployment_rate", "Unemployment rate (at entry)", "numeric", 0, 100, unit="%"),
    UciColumn("Inflation rate", "inflation_rate", "Inflation rate (at entry)", "numeric", -20, 100, unit="%"),
    UciColumn("GDP", "gdp", "GDP growth (at entry)", "numeric", -50, 50, unit="%"),
]

UCI_TARGET_HEADER = "Target"
UCI_OUTCOMES = {"Dropout": "dropped_out", "Graduate": "graduated", "Enrolled": "enrolled"}

# The demo's labels in the other languages of the pages (FeatureDefinition.translations). The
# data are a Portuguese polytechnic's: the Portuguese is what its staff would write.
_UNIT_LABELS = {
    "es": {"credited": "Asignaturas del {sem} semestre convalidadas",
           "enrolled": "Asignaturas del {sem} semestre matriculadas",
           "evaluations": "Evaluaciones de asignaturas del {sem} semestre",
           "approved": "Asignaturas del {sem} semestre aprobadas", "grade": "Nota media del {sem} semestre",
           "without_evaluations": "Asignaturas del {sem} semestre sin evaluaciones"},
    "pt": {"credited": "Unidades curriculares do {sem} semestre creditadas",
           "enrolled": "Unidades curriculares do {sem} semestre inscritas",
           "evaluations": "Avaliações das unidades curriculares do {sem} semestre",
           "approved": "Unidades curriculares do {sem} semestre aprovadas", "grade": "Média do {sem} semestre",
           "without_evaluations": "Unidades curriculares do {sem} semestre sem avaliações"},
}
_SEMESTERS = {"es": {"1st": "primer", "2nd": "segundo"}, "pt": {"1st": "1.º", "2nd": "2.º"}}
UCI_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "marital_status": "Estado civil", "application_mode": "Modalidad de acceso",
        "application_order": "Orden de preferencia de la solicitud (0 = primera opción)", "course": "Carrera",
        "daytime_attendance": "Asistencia diurna", "previous_qualification": "Titulación previa",
        "previous_qualification_grade": "Nota de la titulación previa", "nationality": "Nacionalidad",
        "mother_qualification": "Titulación de la madre", "father_qualification": "Titulación del padre",
        "mother_occupation": "Ocupación de la madre", "father_occupation": "Ocupación del padre",
        "admission_grade": "Nota de admisión", "displaced": "Vive fuera de casa (desplazado)",
        "special_needs": "Necesidades educativas especiales",
        "debtor": "Tiene deudas con la institución (deudor)", "tuition_up_to_date": "Matrícula al día",
        "gender": "Género", "scholarship_holder": "Becario", "age_at_enrolment": "Edad al matricularse",
        "international": "Estudiante internacional", "unemployment_rate": "Tasa de desempleo (al ingreso)",
        "inflation_rate": "Tasa de inflación (al ingreso)", "gdp": "Crecimiento del PIB (al ingreso)",
    },
    "pt": {
        "marital_status": "Estado civil", "application_mode": "Regime de candidatura",
        "application_order": "Ordem de candidatura (0 = primeira opção)", "course": "Curso",
        "daytime_attendance": "Frequência diurna", "previous_qualification": "Habilitação anterior",
        "previous_qualification_grade": "Nota da habilitação anterior", "nationality": "Nacionalidade",
        "mother_qualification": "Habilitações da mãe", "father_qualification": "Habilitações do pai",
        "mother_occupation": "Profissão da mãe", "father_occupation": "Profissão do pai",
        "admission_grade": "Nota de candidatura", "displaced": "Deslocado (vive fora de casa)",
        "special_needs": "Necessidades educativas especiais",
        "debtor": "Tem dívidas à instituição (devedor)", "tuition_up_to_date": "Propinas em dia",
        "gender": "Género", "scholarship_holder": "Bolseiro", "age_at_enrolment": "Idade à entrada",
        "international": "Estudante internacional", "unemployment_rate": "Taxa de desemprego (à entrada)",
        "inflation_rate": "Taxa de inflação (à entrada)", "gdp": "Crescimento do PIB (à entrada)",
    },
}
for _language, _labels in _UNIT_LABELS.items():
    for _sem, _name in _SEMESTERS[_language].items():
        for _part, _label in _labels.items():
            UCI_LABELS[_language][f"units_{_sem}_{_part}"] = _label.format(sem=_name)


def uci_translations(key: str) -> dict[str, dict[str, str]]:
    """The column's labels in Spanish and Portuguese, as FeatureDefinition.translations holds them."""
    return {language: {"label": labels[key]} for language, labels in UCI_LABELS.items() if key in labels}

"""Migration operations that Django's own would do more expensively."""

from django.db import migrations, models


class DropInstitutionKeyIndex(migrations.AlterField):
    """``institution`` becomes ``ForeignKey(..., db_index=False)``: drops the key's single-column
    index and nothing else.

    Django's ``AlterField`` would also drop and re-add the foreign key constraint, which re-checks
    every row of the table under a lock (minutes on a large predictions table). Every tenant table
    keeps a full index led by ``institution`` (a test checks), so lookups by institution and the
    cascade when an institution is deleted still use an index.
    """

    def __init__(self, model_name: str):
        field = models.ForeignKey(
            "institutions.institution", on_delete=models.deletion.CASCADE, related_name="+", db_index=False
        )
        super().__init__(model_name=model_name, name="institution", field=field)

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        for name in schema_editor._constraint_names(
            model, ["institution_id"], index=True, unique=False, primary_key=False, type_=models.Index.suffix
        ):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[model._meta.get_field("institution")]))

    def describe(self):
        return f"Drop the single-column index of {self.model_name}.institution"

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    """Every form renders through templates/forms/form.html: the admin way, errors summarised on top
    and each field's errors in its row."""

    form_template_name = "forms/form.html"

"""The one template environment: every text a user reads is rendered here from ``templates/``.

Sandboxed, because the data it renders carries untrusted text (model ids, licences, chat
templates, error messages); undefined names are errors, not blanks. The filters that make
untrusted text inert in Markdown (:mod:`bot.safetext`: ``code``, ``code_block``, ``plain``) and
those that write sizes and parameter counts in words (``size``, ``params``) are registered once,
here. Every fenced block of every template is ``{% filter code_block("lang") %}…{% endfilter %}``,
never a literal fence: only the filter knows how long a fence the text inside needs.
"""

from __future__ import annotations

from functools import cache

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.safetext import code_block, code_span, plain
from runners.units import human_bytes, human_params


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=PackageLoader("templates", ""), undefined=StrictUndefined,
                               keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                               autoescape=False)
    env.filters["code"] = code_span
    env.filters["code_block"] = code_block
    env.filters["plain"] = plain
    env.filters["size"] = human_bytes  # 4920000000 -> 4.92 GB (decimal, as the Hub shows sizes)
    env.filters["params"] = human_params  # 8030261248 -> 8.03B
    return env


def render(template_name: str, /, **context: object) -> str:
    return environment().get_template(template_name).render(**context)

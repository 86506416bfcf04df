#!/usr/bin/env python3
"""Renders a Jinja chat template the way Hugging Face transformers' apply_chat_template does, for
chat_jinja_test.cpp to compare with our C++ formats.

Usage: chat_render_jinja.py TEMPLATE CASES.json
CASES.json is a JSON list of {"messages": [...], "tools": [...] or null,
"add_generation_prompt": bool, "enable_thinking": bool}. Prints a JSON list of the rendered
strings, one per case.

The environment is transformers' (src/transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension, and a
`tojson` filter that is json.dumps with ensure_ascii=False and the given indent/separators (not
Jinja's own tojson, which sorts keys and HTML-escapes).
"""

import json
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main():
    template_path, cases_path = sys.argv[1], sys.argv[2]
    with open(template_path, encoding="utf-8") as f:
        source = f.read()
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    out = []
    for case in cases:
        kwargs = {
            "messages": case["messages"],
            "tools": case.get("tools"),
            "add_generation_prompt": case.get("add_generation_prompt", True),
        }
        if "enable_thinking" in case:
            kwargs["enable_thinking"] = case["enable_thinking"]
        out.append(template.render(**kwargs))
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

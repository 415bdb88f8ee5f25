// Print, as JSON, the shape of the arguments a TypeScript program passes to the package's
// components: `new <x>.NatInstances(name, {...})` and `new <x>.NatInstanceVpc(name, {...})`.
// Literals keep their kind (string, number, boolean, array, object); anything else is an
// "expression" (an output, a variable, a call). Usage: node literals.js file.ts
"use strict";
const fs = require("fs");
const ts = require("typescript");

const COMPONENTS = new Set(["NatInstances", "NatInstanceVpc"]);

function shape(node) {
    if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) ||
        ts.isSatisfiesExpression(node)) {
        return shape(node.expression);
    }
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
        return { kind: "string", value: node.text };
    }
    if (ts.isNumericLiteral(node)) return { kind: "number", value: Number(node.text) };
    if (node.kind === ts.SyntaxKind.TrueKeyword) return { kind: "boolean", value: true };
    if (node.kind === ts.SyntaxKind.FalseKeyword) return { kind: "boolean", value: false };
    if (ts.isArrayLiteralExpression(node)) {
        return { kind: "array", items: node.elements.map(shape) };
    }
    if (ts.isObjectLiteralExpression(node)) {
        const properties = {};
        for (const property of node.properties) {
            if (!ts.isPropertyAssignment(property) ||
                !(ts.isIdentifier(property.name) || ts.isStringLiteral(property.name))) {
                return { kind: "unreadable", text: property.getText() };
            }
            properties[property.name.text] = shape(property.initializer);
        }
        return { kind: "object", properties };
    }
    return { kind: "expression", text: node.getText() };
}

const file = process.argv[2];
const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest,
                                   true, ts.ScriptKind.TS);
const calls = [];
(function visit(node) {
    if (ts.isNewExpression(node) && ts.isPropertyAccessExpression(node.expression) &&
        COMPONENTS.has(node.expression.name.text)) {
        const args = node.arguments || [];
        calls.push({ component: node.expression.name.text,
                     name: args[0] ? shape(args[0]) : null,
                     args: args[1] ? shape(args[1]) : null });
    }
    ts.forEachChild(node, visit);
})(source);
const syntaxErrors = source.parseDiagnostics.map(d => ts.flattenDiagnosticMessageText(
    d.messageText, "\n"));
process.stdout.write(JSON.stringify({ calls, syntaxErrors }) + "\n");

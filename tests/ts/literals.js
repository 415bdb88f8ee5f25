// Print, as JSON, the shape of the arguments a TypeScript program passes to the package's
// components: `new <x>.NatInstances(name, {...})` and `new <x>.NatInstanceVpc(name, {...})`.
// Literals keep their kind (string, number, boolean, array, object); anything else is an
// "expression" (an output, a variable, a call), with whether TypeScript types it as a plain
// value. Usage: node literals.js file.ts
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
    // what TypeScript knows of it: a string, number or boolean is a plain value (the schema's
    // plain fields take only those); an output, or anything the file alone cannot type, is not
    const type = checker.getTypeAtLocation(node);
    const primitive = ts.TypeFlags.StringLike | ts.TypeFlags.NumberLike |
        ts.TypeFlags.BooleanLike;
    const plain = (type.flags & primitive) !== 0 && (type.flags & ts.TypeFlags.Any) === 0;
    return { kind: "expression", text: node.getText(), plain, type: checker.typeToString(type) };
}

const file = process.argv[2];
// the file alone (imports unresolved: their values are `any`), for its types
const program = ts.createProgram([file], { noResolve: true, noLib: true, types: [],
                                           target: ts.ScriptTarget.Latest });
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);
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
const syntaxErrors = program.getSyntacticDiagnostics(source).map(d => ts.flattenDiagnosticMessageText(
    d.messageText, "\n"));
process.stdout.write(JSON.stringify({ calls, syntaxErrors }) + "\n");

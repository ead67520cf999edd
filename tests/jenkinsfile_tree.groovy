// Parse a Jenkinsfile with Groovy's own parser and print its call tree as JSON.
//
// Usage: groovy jenkinsfile_tree.groovy Jenkinsfile
// A declarative pipeline is nested method calls with closures (`stage('x') { steps { ... } }`);
// each becomes {"call", "args", "named", "block"}; constants {"lit"}, bare words such as
// `any` {"word"}, `KEY = value` lines {"assign", "value"}, lists {"list"}, and anything
// `"${env.NAME ?: 'x'}"` {"env_or", "default"}, else {"expr": source text}. tests/jenkinsfile.py turns this tree into Jenkins'
// declarative AST JSON. A syntax error exits 1 with Groovy's message.
import groovy.json.JsonOutput
import org.codehaus.groovy.ast.ASTNode
import org.codehaus.groovy.ast.builder.AstBuilder
import org.codehaus.groovy.ast.expr.*
import org.codehaus.groovy.ast.stmt.BlockStatement
import org.codehaus.groovy.ast.stmt.ExpressionStatement
import org.codehaus.groovy.ast.stmt.Statement
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.MultipleCompilationErrorsException

def convertStatements(Statement statement) {
    def statements = statement instanceof BlockStatement ? statement.statements : [statement]
    return statements.collect { convertStatement(it) }
}

def convertStatement(Statement statement) {
    if (statement instanceof ExpressionStatement) {
        return convert(statement.expression)
    }
    return [unsupported: statement.class.simpleName, line: statement.lineNumber]
}

def convert(Expression expression) {
    if (expression instanceof MethodCallExpression && expression.implicitThis) {
        def args = []
        def named = []
        def block = null
        def arguments = expression.arguments
        def items = arguments instanceof TupleExpression ? arguments.expressions : [arguments]
        items.each { item ->
            if (item instanceof NamedArgumentListExpression || item instanceof MapExpression) {
                item.mapEntryExpressions.each { entry ->
                    named << [entry.keyExpression.text, convert(entry.valueExpression)]
                }
            } else if (item instanceof ClosureExpression) {
                block = convertStatements(item.code)
            } else {
                args << convert(item)
            }
        }
        return [call: expression.methodAsString, args: args, named: named, block: block,
                line: expression.lineNumber]
    }
    if (expression instanceof BinaryExpression && expression.operation.text == '=') {
        return [assign: expression.leftExpression.text, value: convert(expression.rightExpression)]
    }
    if (expression instanceof ConstantExpression) {
        return [lit: expression.value]
    }
    if (expression instanceof VariableExpression) {
        return [word: expression.name]
    }
    if (expression instanceof ListExpression) {
        return [list: expression.expressions.collect { convert(it) }]
    }
    // "${env.NAME ?: 'default'}": an agent's environment variable, else a default.
    if (expression instanceof GStringExpression && expression.values.size() == 1
            && expression.strings.every { it.text == '' }) {
        def value = expression.values[0]
        if (value instanceof ElvisOperatorExpression
                && value.trueExpression instanceof PropertyExpression
                && value.trueExpression.objectExpression.text == 'env') {
            return [env_or: value.trueExpression.propertyAsString,
                    default: convert(value.falseExpression), expr: expression.text]
        }
    }
    return [expr: expression.text]
}

def source = new File(args[0]).text
List<ASTNode> nodes
try {
    nodes = new AstBuilder().buildFromString(CompilePhase.CONVERSION, true, source)
} catch (MultipleCompilationErrorsException error) {
    System.err.println(error.message.readLines().findAll { it.trim() }.join(' '))
    System.exit(1)
}
println JsonOutput.toJson(convertStatements(nodes[0] as Statement))

enum DateFilter {
    static let all: [String: LiquidFilterFunction] = [:]
}

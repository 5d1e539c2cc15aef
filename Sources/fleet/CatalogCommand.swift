import ArgumentParser
import FleetCore
import Foundation
import ProfileStore

/// `fleet catalog import FILE`: the product catalog of the store.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "The product catalog of the store.", subcommands: [Import.self])

    /// `fleet catalog import FILE`.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import products (sku, name, price, currency, category, tags, url) from NDJSON or CSV.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "An .ndjson or .csv file.")
        var file: String

        func run() async throws {
            _ = try global.bootstrapLogging()
            let reader = try RecordReader(path: file)
            try await global.withProfileStore { store in try await importProducts(reader, into: store) }
        }

        private func importProducts(_ reader: RecordReader, into store: any ProfileBackend) async throws {
            var batch: [CatalogProduct] = []
            var imported = 0
            var bad = 0
            try await reader.forEach { record in
                switch record {
                case .bad(let why, let line):
                    bad += 1
                    FileHandle.standardError.write(Data("fleet: line \(line): \(why)\n".utf8))
                case .object(let object, let line):
                    do throws(ProfileStoreError) {
                        batch.append(try CatalogProduct(json: .object(object)))
                    } catch {
                        bad += 1
                        FileHandle.standardError.write(Data("fleet: line \(line): \(error.code): \(error.message)\n".utf8))
                    }
                    if batch.count >= 1000 {
                        imported += try await store.importCatalog(batch)
                        batch.removeAll()
                    }
                }
            }
            if !batch.isEmpty { imported += try await store.importCatalog(batch) }
            print("imported \(imported) products from \(file); \(bad) bad lines")
            if bad > 0 { throw CLIError("\(bad) lines were not imported", exitCode: 65) }
        }
    }
}

import XCTest
@testable import KestrelTensorBoard

final class RecordFramingTests: XCTestCase {
    func testCRC32CCheckValue() {
        // The standard check value of CRC-32C (RFC 3720, appendix B.4).
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    }

    func testMaskedCRCRotatesAndAddsTheConstant() {
        let crc: UInt32 = 0xE306_9283
        let expected = ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
        XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), expected)
    }

    func testRecordLayout() {
        let payload: [UInt8] = Array("hello".utf8)
        let record = tfRecord(payload)
        XCTAssertEqual(record.count, 8 + 4 + payload.count + 4)
        XCTAssertEqual(Array(record[0..<8]), [5, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = record[8..<12].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        XCTAssertEqual(lengthCRC, CRC32C.masked(record[0..<8]))
        XCTAssertEqual(Array(record[12..<17]), payload)
        let dataCRC = record[17..<21].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        XCTAssertEqual(dataCRC, CRC32C.masked(payload))
    }
}

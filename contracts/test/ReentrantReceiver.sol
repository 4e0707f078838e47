// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ITrainingLedger} from "../ITrainingLedger.sol";

/// @notice Test-only attacker: re-enters `withdraw` from its receive hook to try to be paid
/// twice. `mode` 0: swallow the re-entry's failure and record it; 1: refuse every payment.
contract ReentrantReceiver {
    ITrainingLedger public immutable ledger;
    uint8 public mode;
    uint256 public received;
    uint256 public reentryAttempts;
    bool public reentrySucceeded;
    bytes public reentryError;

    constructor(ITrainingLedger ledger_) {
        ledger = ledger_;
    }

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    /// @notice Put value into the ledger's balance for this contract: stake, then leave.
    function fundBalance() external payable {
        ledger.registerVerifier{value: msg.value}();
        ledger.unregisterVerifier();
    }

    function attack() external returns (uint256) {
        return ledger.withdraw();
    }

    receive() external payable {
        if (mode == 1) revert("no thanks");
        received += msg.value;
        if (reentryAttempts == 0) {
            reentryAttempts += 1;
            try ledger.withdraw() returns (uint256) {
                reentrySucceeded = true;
            } catch (bytes memory reason) {
                reentryError = reason;
            }
        }
    }
}
